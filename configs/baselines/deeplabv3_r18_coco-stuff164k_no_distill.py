# DeepLabV3-R18-D8 on COCO-Stuff-164k (171 classes) without distillation: MMSeg's DeepLabV3 COCO-Stuff-164k recipe
# (80k iterations, 4 GPUs x 4, SGD lr 0.01, momentum 0.9, weight decay 5e-4, poly decay 0.9, crop 512x512, auxiliary
# FCN head) with the R18 backbone. The fair baseline of the COCO-Stuff-164k distillation configs, which inherit this
# file.
#   4 GPUs: tools/dist_train.sh configs/baselines/deeplabv3_r18_coco-stuff164k_no_distill.py 4
_base_ = ['mmseg::deeplabv3/deeplabv3_r50-d8_4xb4-80k_coco-stuff164k-512x512.py', '../_base_/deeplabv3_r18_512x512.py']

model = {{_base_.deeplabv3_r18_d8}}
train_dataloader = {{_base_.gpu_train_loader}}
default_hooks = {{_base_.safe_default_hooks}}
