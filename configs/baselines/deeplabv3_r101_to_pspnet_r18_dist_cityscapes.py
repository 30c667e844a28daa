# Baseline: DIST on the logits in place of GDKD, DeepLabV3-R101 teacher -> PSPNet-R18 student. Everything else is
# configs/gdkd/deeplabv3_r101_to_pspnet_r18_cityscapes.py's; the DIST settings (and why) are those of
# configs/baselines/deeplabv3_r101_to_r18_dist_cityscapes.py.
#   8 GPUs: tools/dist_train.sh configs/baselines/deeplabv3_r101_to_pspnet_r18_dist_cityscapes.py 8
_base_ = ['../gdkd/deeplabv3_r101_to_pspnet_r18_cityscapes.py']

model = dict(
    distill_losses=dict(
        _delete_=True,
        loss_dist=dict(type='DISTLoss', beta=1.0, gamma=1.0, temperature=1.0, per_image_intra=False,
                       loss_weight=1.0, ignore_index=-1)))
