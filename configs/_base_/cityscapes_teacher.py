# The teacher of the Cityscapes configs: MMSeg's DeepLabV3-R101-D8 (80k schedule) with the model-zoo weights of
# exactly that config; your own weights: --cfg-options model.teacher_ckpt=PATH. Only a name MMSeg's configs lack, so
# it sits beside an MMSeg config in `_base_` (see gdkd/deeplabv3_r101_to_r18_cityscapes.py).
cityscapes_teacher = dict(
    teacher='mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024.py',
    teacher_ckpt=('https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3/'
                  'deeplabv3_r101-d8_512x1024_80k_cityscapes/'
                  'deeplabv3_r101-d8_512x1024_80k_cityscapes_20200606_113503-9e428899.pth'))
