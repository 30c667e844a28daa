# Demo baseline: the GDKD demo student distilled with DIST instead, on the identical schedule; the loss settings of
# configs/baselines/deeplabv3_r101_to_r18_dist_cityscapes.py (Huang et al. 2022 as the GDKD authors run it on
# Cityscapes: beta = gamma = T = 1; tests/test_demo.py checks that the two agree).
_base_ = ['./gdkd_toy.py']
model = dict(distill_losses=dict(
    _delete_=True, loss_dist=dict(type='DISTLoss', beta=1.0, gamma=1.0, temperature=1.0)))
