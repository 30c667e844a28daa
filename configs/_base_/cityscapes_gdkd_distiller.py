# The distiller of the Cityscapes GDKD configs, all but its student: the DeepLabV3-R101-D8 teacher (MMSeg zoo, 80.2
# mIoU) with its weights, and GDKD k=3, w0=1, w1=1, w2=2, T=1. One name MMSeg's configs lack, so it sits beside an
# MMSeg Cityscapes config in `_base_`: the reference (gdkd/deeplabv3_r101_to_r18_cityscapes.py) and the configs that
# keep another MMSeg recipe (gdkd/deeplabv3_r101_to_segformer_mit-b0_cityscapes.py) take it with
# `model = dict(_delete_=True, student=_base_.model, **_base_.cityscapes_gdkd_distiller, ...)`.
cityscapes_gdkd_distiller = dict(
    type='SegDistiller',
    teacher='mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024.py',
    # the zoo weights of exactly that teacher config; your own: --cfg-options model.teacher_ckpt=PATH
    teacher_ckpt=('https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3/'
                  'deeplabv3_r101-d8_512x1024_80k_cityscapes/'
                  'deeplabv3_r101-d8_512x1024_80k_cityscapes_20200606_113503-9e428899.pth'),
    distill_losses=dict(
        loss_gdkd=dict(type='GDKDLoss', k=3, w0=1.0, w1=1.0, w2=2.0, temperature=1.0, loss_weight=1.0)),
    # The frozen teacher in float32. On GPUs `--cfg-options model.teacher_precision=bf16
    # model.teacher_channels_last=True` runs its forward faster under bf16 autocast (README: "Teacher precision").
    teacher_precision='fp32',
    teacher_channels_last=False)
