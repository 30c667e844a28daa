# Demo baseline: the GDKD demo student distilled with DIST instead, on the identical schedule, with the loss settings
# of configs/baselines/deeplabv3_r101_to_r18_dist_cityscapes.py (the DIST authors' Cityscapes settings, every pixel
# counted as in their code; tests/reproduce/test_demo.py checks that the two agree).
_base_ = ['./gdkd_toy.py']
model = dict(distill_losses=dict(
    _delete_=True,
    loss_dist=dict(type='DISTLoss', beta=1.0, gamma=1.0, temperature=1.0, per_image_intra=False, loss_weight=1.0,
                   ignore_index=-1)))
