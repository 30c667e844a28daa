# Demo GDKD student: configs/gdkd/deeplabv3_r101_to_r18_cityscapes.py with only the data root, widths, crop,
# class-weighted cross-entropy, optimizer and schedule changed. The teacher is the demo teacher
# (configs/demo/teacher_toy.py) trained by `make demo`. Width 8 and 200 iterations keep `make demo` within 15 minutes
# on 2 cores while leaving the student room to learn from the teacher (a wider student learns as much alone); the
# measurements behind both choices are in docs/demo.md.
_base_ = ['../gdkd/deeplabv3_r101_to_r18_cityscapes.py', '../_base_/datasets/toy_cityscapes.py']
base_width = 8
# MMEngine's Runner gives the distiller the top-level data_preprocessor (as in MMSeg configs): shrink both
data_preprocessor = dict(size={{_base_.toy_crop_size}})
student = dict(
    pretrained=None,
    data_preprocessor=dict(size={{_base_.toy_crop_size}}),
    backbone=dict(stem_channels=base_width, base_channels=base_width),
    decode_head=dict(in_channels=base_width * 8, channels=base_width * 2, dilations=(1, 6, 12, 18),
                     loss_decode={{_base_.toy_ce_loss}}),
    auxiliary_head=dict(in_channels=base_width * 4, channels=base_width, loss_decode={{_base_.toy_ce_loss}}))
model = dict(
    student=student,
    teacher='{{fileDirname}}/teacher_toy.py',
    teacher_ckpt='work_dirs/demo/teacher/last.pth')
train_dataloader = {{_base_.toy_train_dataloader}}
val_dataloader = {{_base_.toy_val_dataloader}}
test_dataloader = val_dataloader

max_iters = 200
# AdamW as the demo teacher (configs/demo/teacher_toy.py says why), at a higher rate for the shorter schedule
# (docs/demo.md).
optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=5e-3, weight_decay=0.01))
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1))
custom_hooks = [dict(type='DistillWarmupHook', warmup_iters=20)]
