# DeepLabV3-R18-D8 on Pascal VOC 2012 + aug (21 classes) without distillation: MMSeg's DeepLabV3 VOC-aug recipe
# (40k iterations, 4 GPUs x 4, SGD lr 0.01, momentum 0.9, weight decay 5e-4, poly decay 0.9, crop 512x512, auxiliary
# FCN head) with the R18 backbone. The fair baseline of the VOC distillation configs, which inherit this file.
#   4 GPUs: tools/dist_train.sh configs/baselines/deeplabv3_r18_voc12aug_no_distill.py 4
_base_ = ['mmseg::deeplabv3/deeplabv3_r50-d8_4xb4-40k_voc12aug-512x512.py', '../_base_/deeplabv3_r18_512x512.py']

model = {{_base_.deeplabv3_r18_d8}}
train_dataloader = {{_base_.gpu_train_loader}}
default_hooks = {{_base_.safe_default_hooks}}
