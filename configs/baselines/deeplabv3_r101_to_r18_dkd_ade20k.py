# Baseline: DKD (ground-truth class against the rest) in place of GDKD; everything else is
# configs/gdkd/deeplabv3_r101_to_r18_ade20k.py. alpha=1, beta=2 as on Cityscapes (configs/README.md: equal to
# GDKD's w0 and w2, so the runs differ only in where the classes are split).
_base_ = ['../gdkd/deeplabv3_r101_to_r18_ade20k.py']

model = dict(distill_losses=dict(
    _delete_=True, loss_dkd=dict(type='DKDLoss', alpha=1.0, beta=2.0, temperature=1.0, loss_weight=1.0)))
