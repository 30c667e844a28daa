# Baseline: DKD in place of GDKD, for the PSPNet-R18-D8 student. Teacher, student, schedule and auxiliary distillation
# are those of configs/gdkd/deeplabv3_r101_to_pspnet_r18_cityscapes.py; the loss settings (alpha=1, beta=2: our choice,
# see deeplabv3_r101_to_r18_dkd_cityscapes.py) are the R18 baseline's.
#   8 GPUs: tools/dist_train.sh configs/baselines/deeplabv3_r101_to_pspnet_r18_dkd_cityscapes.py 8
_base_ = ['../gdkd/deeplabv3_r101_to_pspnet_r18_cityscapes.py']

model = dict(distill_losses=dict(
    _delete_=True, loss_dkd=dict(type='DKDLoss', alpha=1.0, beta=2.0, temperature=1.0, loss_weight=1.0)))
