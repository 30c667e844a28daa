# The GDKD distiller every segmentation config starts from, all but its student and its teacher: GDKD k=3, w0=1,
# w1=1, w2=2, T=1 (the authors' segmentation settings) and the auxiliary (FCN, ResNet stage 3) head distilled at 0.4 x
# the main weight, as the GDKD authors' trainer does for ResNet students (seg-gdkd train_kd.py: kd_loss += 0.4 *
# lambda_kd * criterion_kd(student aux logits, teacher aux logits)); students without one set aux_distill_weight=0.
# The frozen teacher runs in float32; on GPUs `--cfg-options model.teacher_precision=bf16
# model.teacher_channels_last=True` runs its forward faster (docs/performance.md, "Teacher precision").
# Only a name MMSeg's configs lack, so it sits beside an MMSeg config in `_base_`; a leaf config takes it with
# `model = dict(_delete_=True, student=..., teacher=..., teacher_ckpt=..., **_base_.gdkd_distiller)`.
gdkd_distiller = dict(
    type='SegDistiller',
    distill_losses=dict(
        loss_gdkd=dict(type='GDKDLoss', k=3, w0=1.0, w1=1.0, w2=2.0, temperature=1.0, loss_weight=1.0)),
    aux_distill_weight=0.4,
    teacher_precision='fp32',
    teacher_channels_last=False)
