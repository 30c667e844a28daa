# Baseline: DIST (Huang et al., 2022) on the logits in place of GDKD. Teacher, student, schedule and auxiliary-head
# distillation are those of configs/gdkd/deeplabv3_r101_to_r18_cityscapes.py.
#   8 GPUs: tools/dist_train.sh configs/baselines/deeplabv3_r101_to_r18_dist_cityscapes.py 8
_base_ = ['../gdkd/deeplabv3_r101_to_r18_cityscapes.py']

# The DIST authors' Cityscapes settings (hunto/DIST_KD segmentation/train_kd.py and losses/dist_kd.py, as GDKD's
# seg-gdkd `--kd-method dist`): beta=1, gamma=1, T=1, --lambda-kd 1 (loss_weight); the intra-class correlation over
# all pixels of each GPU's batch. Their code never reads the labels, so every pixel counts, ignored ones included:
# ignore_index=-1 is a label no pixel has (DISTLoss alone would leave label-255 pixels out).
model = dict(
    distill_losses=dict(
        _delete_=True,
        loss_dist=dict(type='DISTLoss', beta=1.0, gamma=1.0, temperature=1.0, per_image_intra=False,
                       loss_weight=1.0, ignore_index=-1)))
