# GDKD: DeepLabV3-R101-D8 teacher -> DeepLabV3-R18-D8 student on COCO-Stuff-164k (171 classes), on MMSeg's 80k
# schedule (4 GPUs x 4, SGD lr 0.01, crop 512x512; baselines/deeplabv3_r18_coco-stuff164k_no_distill.py, which this
# inherits). GDKD and its auxiliary distillation are the authors' Cityscapes settings (_base_/gdkd_distiller.py): they
# publish none for COCO-Stuff. Teacher: MMSeg's deeplabv3_r101-d8_4xb4-80k_coco-stuff164k-512x512, the zoo's
# DeepLabV3-R101 on this schedule (its metafile mIoU and those of the 160k/320k ones: configs/README.md; switch with
# --cfg-options model.teacher=... model.teacher_ckpt=...).
#   4 GPUs: tools/dist_train.sh configs/gdkd/deeplabv3_r101_to_r18_coco-stuff164k.py 4
_base_ = ['../baselines/deeplabv3_r18_coco-stuff164k_no_distill.py', '../_base_/gdkd_distiller.py']

model = dict(
    _delete_=True,
    student=_base_.model,
    teacher='mmseg::deeplabv3/deeplabv3_r101-d8_4xb4-80k_coco-stuff164k-512x512.py',
    teacher_ckpt=('https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3/'
                  'deeplabv3_r101-d8_512x512_4x4_80k_coco-stuff164k/'
                  'deeplabv3_r101-d8_512x512_4x4_80k_coco-stuff164k_20210709_201252-13600dc2.pth'),
    **_base_.gdkd_distiller)
