# Demo baseline: the GDKD demo student distilled with DKD instead, on the identical schedule, with the loss settings
# of configs/baselines/deeplabv3_r101_to_r18_dkd_cityscapes.py: alpha=1, beta=2, T=1, the defaults of the GDKD
# authors' segmentation DKD (seg-gdkd losses/distiller/dkd.py); tests/reproduce/test_demo.py checks that the two agree.
_base_ = ['./gdkd_toy.py']
model = dict(distill_losses=dict(
    _delete_=True,
    loss_dkd=dict(type='DKDLoss', alpha=1.0, beta=2.0, temperature=1.0, loss_weight=1.0)))
