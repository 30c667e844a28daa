# Baseline without distillation: the DeepLabV3-R18-D8 student of configs/gdkd/deeplabv3_r101_to_r18_cityscapes.py
# trained alone, as a plain MMSeg EncoderDecoder, on that config's schedule (40k iterations, 8 GPUs x 2, SGD lr 0.02,
# crop 512x1024, auxiliary head). MMSeg's own published R18 result is for 80k iterations at lr 0.01, so it is no
# fair comparison; this config is.
#   8 GPUs: tools/dist_train.sh configs/baselines/deeplabv3_r18_cityscapes_no_distill.py 8
_base_ = ['../gdkd/deeplabv3_r101_to_r18_cityscapes.py']

# The reference's student in place of the distiller (MMEngine's Python-style `_base_` reference).
model = dict(_delete_=True, **_base_.model.student)
