# GDKD: DeepLabV3-R101-D8 teacher -> DeepLabV3-R18-D8 student on ADE20K (150 classes), on MMSeg's ADE20K schedule
# (80k iterations, 4 GPUs x 4, SGD lr 0.01, crop 512x512; baselines/deeplabv3_r18_ade20k_no_distill.py, which this
# inherits). GDKD and its auxiliary distillation are the authors' Cityscapes settings (_base_/gdkd_distiller.py): they
# publish none for ADE20K. Teacher: MMSeg's deeplabv3_r101-d8_4xb4-80k_ade20k-512x512 (its metafile mIoU:
# configs/README.md).
#   4 GPUs: tools/dist_train.sh configs/gdkd/deeplabv3_r101_to_r18_ade20k.py 4
_base_ = ['../baselines/deeplabv3_r18_ade20k_no_distill.py', '../_base_/gdkd_distiller.py']

model = dict(
    _delete_=True,
    student=_base_.model,
    teacher='mmseg::deeplabv3/deeplabv3_r101-d8_4xb4-80k_ade20k-512x512.py',
    teacher_ckpt=('https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3/deeplabv3_r101-d8_512x512_80k_ade20k/'
                  'deeplabv3_r101-d8_512x512_80k_ade20k_20200615_021256-d89c7fa4.pth'),
    **_base_.gdkd_distiller)
