# GDKD: DeepLabV3-R101-D8 teacher -> DeepLabV3-R18-D8 student on Pascal VOC 2012 + aug (21 classes), on MMSeg's VOC
# schedule (40k iterations, 4 GPUs x 4, SGD lr 0.01, crop 512x512; baselines/deeplabv3_r18_voc12aug_no_distill.py,
# which this inherits). GDKD k=3, w0=1, w1=1, w2=2, T=1: the authors' Cityscapes settings (they publish none for VOC).
# Teacher: MMSeg's deeplabv3_r101-d8_4xb4-20k_voc12aug-512x512 (metafile: 78.70 mIoU single-scale), the zoo's best
# DeepLabV3-R101 on VOC-aug (its 40k one: 77.92).
# Distillation weight: `loss_weight` below, e.g. --cfg-options model.distill_losses.loss_gdkd.loss_weight=0.1.
# CIRKD's VOC script (train_scripts/train_cirkd/voc/deeplabv3_res18.sh) cuts its memory-based pixel and region
# contrastive weights tenfold (0.1 -> 0.01) and keeps the per-pixel KD weight at 1 (T=1); the GDKD authors publish
# no VOC setting. 1.0 here, as for CIRKD's logit KD; not tuned.
#   4 GPUs: tools/dist_train.sh configs/gdkd/deeplabv3_r101_to_r18_voc12aug.py 4
_base_ = ['../baselines/deeplabv3_r18_voc12aug_no_distill.py']

model = dict(
    _delete_=True,
    type='SegDistiller',
    student={{_base_.model}},
    teacher='mmseg::deeplabv3/deeplabv3_r101-d8_4xb4-20k_voc12aug-512x512.py',
    teacher_ckpt=('https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3/deeplabv3_r101-d8_512x512_20k_voc12aug/'
                  'deeplabv3_r101-d8_512x512_20k_voc12aug_20200617_010932-8d13832f.pth'),
    distill_losses=dict(
        loss_gdkd=dict(type='GDKDLoss', k=3, w0=1.0, w1=1.0, w2=2.0, temperature=1.0, loss_weight=1.0)),
    aux_distill_weight={{_base_.authors_aux_distill_weight}})
