# Baseline without distillation: the DeepLabV3-MobileNetV2-D8 student of
# configs/gdkd/deeplabv3_r101_to_mobilenetv2_cityscapes.py trained alone, as a plain MMSeg EncoderDecoder, on the
# reference schedule (40k iterations, 8 GPUs x 2, SGD lr 0.02, crop 512x1024, auxiliary head with its cross-entropy).
# MMSeg's own published result is for 80k iterations at lr 0.01 (configs/README.md).
#   8 GPUs: tools/dist_train.sh configs/baselines/deeplabv3_mobilenetv2_cityscapes_no_distill.py 8
_base_ = ['../gdkd/deeplabv3_r101_to_mobilenetv2_cityscapes.py']

model = dict(_delete_=True, **_base_.model.student)
