# Baseline: DKD (Zhao et al., 2022) in place of GDKD: the ground-truth class against the rest. Teacher, student,
# schedule and auxiliary distillation (0.4, as the authors' trainer for every loss) are those of
# configs/gdkd/deeplabv3_r101_to_r18_cityscapes.py.
#   8 GPUs: tools/dist_train.sh configs/baselines/deeplabv3_r101_to_r18_dkd_cityscapes.py 8
_base_ = ['../gdkd/deeplabv3_r101_to_r18_cityscapes.py']

# Our choice: DKD publishes no segmentation weights (its alpha=1, beta=8 are for CIFAR-100; ImageNet uses 0.5/0.5).
# alpha=1, beta=2 equal GDKD's w0 (mass KL) and w2 (KL among the other classes), so this run differs from the GDKD
# one only in where the classes are split: at the ground-truth class instead of the teacher's top-3.
# Sweep with e.g. --cfg-options model.distill_losses.loss_dkd.beta=8
model = dict(
    distill_losses=dict(
        _delete_=True,
        loss_dkd=dict(type='DKDLoss', alpha=1.0, beta=2.0, temperature=1.0, loss_weight=1.0)))
