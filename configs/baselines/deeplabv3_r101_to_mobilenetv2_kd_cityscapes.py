# Baseline: per-pixel KD, T=1, in place of GDKD, for the DeepLabV3-MobileNetV2-D8 student. Teacher, student, schedule
# and auxiliary distillation are those of configs/gdkd/deeplabv3_r101_to_mobilenetv2_cityscapes.py; the loss settings
# are deeplabv3_r101_to_r18_kd_cityscapes.py's.
#   8 GPUs: tools/dist_train.sh configs/baselines/deeplabv3_r101_to_mobilenetv2_kd_cityscapes.py 8
_base_ = ['../gdkd/deeplabv3_r101_to_mobilenetv2_cityscapes.py']

model = dict(distill_losses=dict(_delete_=True, loss_kd=dict(type='KDLoss', temperature=1.0, loss_weight=1.0)))
