# Baseline without distillation: the PSPNet-R18-D8 student of configs/gdkd/deeplabv3_r101_to_pspnet_r18_cityscapes.py
# trained alone, as a plain MMSeg EncoderDecoder, on the reference schedule (40k iterations, 8 GPUs x 2, SGD lr 0.02,
# crop 512x1024, auxiliary head). MMSeg's own published PSPNet-R18 result is for 80k iterations at lr 0.01.
#   8 GPUs: tools/dist_train.sh configs/baselines/pspnet_r18_cityscapes_no_distill.py 8
_base_ = ['../gdkd/deeplabv3_r101_to_pspnet_r18_cityscapes.py']

model = dict(_delete_=True, **_base_.model.student)
