# Demo teacher: the real DeepLabV3-R101-D8 Cityscapes config, shrunk for 2 CPU cores and the toy city.
# Only depth, widths, data, class-weighted cross-entropy, optimizer and schedule change: 450 iterations of batch 8
# at 128x128 crops.
_base_ = [
    'mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024.py', '../_base_/datasets/toy_cityscapes.py'
]
custom_imports = dict(imports=['gdkd_seg'], allow_failed_imports=False)
base_width = 32
data_preprocessor = dict(size={{_base_.toy_crop_size}})
model = dict(
    pretrained=None,
    data_preprocessor=data_preprocessor,
    backbone=dict(depth=18, stem_channels=base_width, base_channels=base_width),
    decode_head=dict(in_channels=base_width * 8, channels=base_width * 2, dilations=(1, 6, 12, 18),
                     loss_decode={{_base_.toy_ce_loss}}),
    auxiliary_head=dict(in_channels=base_width * 4, channels=base_width, loss_decode={{_base_.toy_ce_loss}}))
train_dataloader = {{_base_.toy_train_dataloader}}
val_dataloader = {{_base_.toy_val_dataloader}}
test_dataloader = val_dataloader

max_iters = 450
# AdamW: from scratch on a few hundred iterations it learns far faster than the Cityscapes schedule's SGD
# (docs/demo.md has the comparison). 450 iterations keep `make demo` within 15 minutes on 2 cores.
optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=4e-3, weight_decay=0.01))
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1))
