# GDKD: DeepLabV3-R101-D8 teacher -> DeepLabV3-R18-D8 student on COCO-Stuff-164k (171 classes), on MMSeg's 80k
# schedule (4 GPUs x 4, SGD lr 0.01, crop 512x512; baselines/deeplabv3_r18_coco-stuff164k_no_distill.py, which this
# inherits). GDKD k=3, w0=1, w1=1, w2=2, T=1: the authors' Cityscapes settings (they publish none for COCO-Stuff).
# Teacher: MMSeg's deeplabv3_r101-d8_4xb4-80k_coco-stuff164k-512x512 (metafile: 40.87 mIoU single-scale), the zoo's
# DeepLabV3-R101 on this schedule (its 160k/320k ones reach 41.82/42.61; switch with --cfg-options model.teacher=...
# model.teacher_ckpt=...).
#   4 GPUs: tools/dist_train.sh configs/gdkd/deeplabv3_r101_to_r18_coco-stuff164k.py 4
_base_ = ['../baselines/deeplabv3_r18_coco-stuff164k_no_distill.py']

model = dict(
    _delete_=True,
    type='SegDistiller',
    student={{_base_.model}},
    teacher='mmseg::deeplabv3/deeplabv3_r101-d8_4xb4-80k_coco-stuff164k-512x512.py',
    teacher_ckpt=('https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3/'
                  'deeplabv3_r101-d8_512x512_4x4_80k_coco-stuff164k/'
                  'deeplabv3_r101-d8_512x512_4x4_80k_coco-stuff164k_20210709_201252-13600dc2.pth'),
    distill_losses=dict(
        loss_gdkd=dict(type='GDKDLoss', k=3, w0=1.0, w1=1.0, w2=2.0, temperature=1.0, loss_weight=1.0)),
    aux_distill_weight={{_base_.authors_aux_distill_weight}})
