# GDKD: DeepLabV3-R101-D8 teacher -> DeepLabV3-R18-D8 student on Pascal VOC 2012 + aug (21 classes), on MMSeg's VOC
# schedule (40k iterations, 4 GPUs x 4, SGD lr 0.01, crop 512x512; baselines/deeplabv3_r18_voc12aug_no_distill.py,
# which this inherits). GDKD and its auxiliary distillation are the authors' Cityscapes settings
# (_base_/gdkd_distiller.py): they publish none for VOC. Teacher: MMSeg's deeplabv3_r101-d8_4xb4-20k_voc12aug-512x512,
# the zoo's best DeepLabV3-R101 on VOC-aug (its metafile mIoU: configs/README.md).
# Distillation weight: `loss_weight`, e.g. --cfg-options model.distill_losses.loss_gdkd.loss_weight=0.1. 1.0 here,
# as CIRKD's per-pixel logit KD on VOC (train_scripts/train_cirkd/voc/deeplabv3_res18.sh keeps it at 1 with T=1 while
# cutting its contrastive weights tenfold); not tuned.
#   4 GPUs: tools/dist_train.sh configs/gdkd/deeplabv3_r101_to_r18_voc12aug.py 4
_base_ = ['../baselines/deeplabv3_r18_voc12aug_no_distill.py', '../_base_/gdkd_distiller.py']

model = dict(
    _delete_=True,
    student=_base_.model,
    teacher='mmseg::deeplabv3/deeplabv3_r101-d8_4xb4-20k_voc12aug-512x512.py',
    teacher_ckpt=('https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3/deeplabv3_r101-d8_512x512_20k_voc12aug/'
                  'deeplabv3_r101-d8_512x512_20k_voc12aug_20200617_010932-8d13832f.pth'),
    **_base_.gdkd_distiller)
