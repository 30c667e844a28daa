# Baseline: classic per-pixel KD (Hinton et al.), KL(p_t || p_s) at T=1, in place of GDKD. Teacher, student,
# schedule and auxiliary distillation (0.4, as the authors' trainer for every loss) are those of
# configs/gdkd/deeplabv3_r101_to_r18_cityscapes.py.
#   8 GPUs: tools/dist_train.sh configs/baselines/deeplabv3_r101_to_r18_kd_cityscapes.py 8
_base_ = ['../gdkd/deeplabv3_r101_to_r18_cityscapes.py']

model = dict(
    distill_losses=dict(
        _delete_=True,
        loss_kd=dict(type='KDLoss', temperature=1.0, loss_weight=1.0)))
