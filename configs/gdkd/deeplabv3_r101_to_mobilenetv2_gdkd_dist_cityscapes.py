# GDKD + DIST's intra-class term, DeepLabV3-R101 teacher -> MobileNetV2 student. Everything else is
# configs/gdkd/deeplabv3_r101_to_mobilenetv2_cityscapes.py's; the DIST term (and why) is that of
# configs/gdkd/deeplabv3_r101_to_r18_gdkd_dist_cityscapes.py.
#   8 GPUs: tools/dist_train.sh configs/gdkd/deeplabv3_r101_to_mobilenetv2_gdkd_dist_cityscapes.py 8
_base_ = ['./deeplabv3_r101_to_mobilenetv2_cityscapes.py']

model = dict(
    distill_losses=dict(
        loss_dist_intra=dict(type='DISTLoss', beta=0.0, gamma=1.0, temperature=1.0, per_image_intra=False,
                             loss_weight=1.0, ignore_index=-1)))
