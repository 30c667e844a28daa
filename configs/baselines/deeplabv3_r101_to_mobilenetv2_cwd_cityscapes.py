# Baseline: channel-wise distillation of the logits (CWD) in place of GDKD, for the DeepLabV3-MobileNetV2-D8 student.
# Teacher, student and schedule are those of configs/gdkd/deeplabv3_r101_to_mobilenetv2_cityscapes.py; the loss settings
# (T=1, weight 5, decode logits only) are deeplabv3_r101_to_r18_cwd_cityscapes.py's, after MMRazor's Cityscapes CWD
# config.
#   8 GPUs: tools/dist_train.sh configs/baselines/deeplabv3_r101_to_mobilenetv2_cwd_cityscapes.py 8
_base_ = ['../gdkd/deeplabv3_r101_to_mobilenetv2_cityscapes.py']

model = dict(
    aux_distill_weight=0.0,
    distill_losses=dict(_delete_=True, loss_cwd=dict(type='CWDLoss', temperature=1.0, loss_weight=5.0)))
