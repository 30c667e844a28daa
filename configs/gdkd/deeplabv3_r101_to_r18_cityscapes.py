# GDKD: DeepLabV3-R101-D8 teacher (MMSeg zoo) -> DeepLabV3-R18-D8 student on Cityscapes.
# The authors' recipe (ZaberKo/seg-gdkd train_kd.py and train_scripts/train_kd/): 40k iterations, total batch 16
# (8 GPUs x 2), SGD lr 0.02, momentum 0.9, weight decay 5e-4, poly decay 0.9 to 1e-4, crop 512x1024, auxiliary head
# distilled at 0.4 x the main weight, no distillation warm-up; GDKD k=3, w0=1, w1=1, w2=2, T=1. What differs from
# their recipe, and why: configs/README.md ("The authors' recipe, point by point"). Every other 40k Cityscapes config
# inherits this file.
#   8 GPUs: tools/dist_train.sh configs/gdkd/deeplabv3_r101_to_r18_cityscapes.py 8
_base_ = [
    'mmseg::deeplabv3/deeplabv3_r18-d8_4xb2-80k_cityscapes-512x1024.py', '../_base_/gdkd_distiller.py',
    '../_base_/cityscapes_teacher.py'
]
custom_imports = dict(imports=['gdkd_seg'], allow_failed_imports=False)

# MMSeg's DeepLabV3-R18-D8 student, the Cityscapes teacher and the GDKD distiller of _base_.
model = dict(_delete_=True, student=_base_.model, **_base_.cityscapes_teacher, **_base_.gdkd_distiller)

# 8 loader workers per GPU process, persistent and pinned: MMSeg's 2 cannot make a batch of this pipeline (random
# resize of a 1024x2048 image, crop, flip, photometric distortion) within a distillation step on a current GPU
# (configs/README.md, "Data loader", has the measurement). Check a machine with
# `python tools/analysis_tools/benchmark_distill_step.py CONFIG --batch 2` (its "data loading" table).
train_dataloader = dict(batch_size=2, num_workers=8, persistent_workers=True, pin_memory=True)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0005))
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=40000, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=40000, val_interval=4000)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4000, max_keep_ckpts=3),
    # Stop at the first NaN/inf loss term, before the optimizer step (opt out: ...non_finite_loss.enabled=False).
    non_finite_loss=dict(type='NonFiniteLossHook'),
    # Save/restore the random streams in checkpoints: --resume continues exactly the uninterrupted run.
    random_state=dict(type='RandomStateHook'))
# No distillation warm-up: the authors' trainer applies the full distillation weight from the first iteration. To
# ramp it in: --cfg-options "custom_hooks=[dict(type='DistillWarmupHook', warmup_iters=1000)]"
custom_hooks = []
# 8 GPUs x 2 images; with fewer GPUs pass --cfg-options auto_scale_lr.enable=True to scale the learning rate.
auto_scale_lr = dict(enable=False, base_batch_size=16)
