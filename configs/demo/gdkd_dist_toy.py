# Demo: the GDKD demo student with DIST's intra-class term added (the GDKD authors' gdkd-dist, intra weight 1), on
# the identical schedule, with the loss settings of configs/gdkd/deeplabv3_r101_to_r18_gdkd_dist_cityscapes.py
# (tests/reproduce/test_demo.py checks that the two agree). The GDKD entry is gdkd_toy.py's.
_base_ = ['./gdkd_toy.py']
model = dict(distill_losses=dict(
    loss_dist_intra=dict(type='DISTLoss', beta=0.0, gamma=1.0, temperature=1.0, per_image_intra=False,
                         loss_weight=1.0, ignore_index=-1)))
