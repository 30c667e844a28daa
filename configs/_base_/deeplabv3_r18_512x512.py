# What the 512x512 benchmarks (ADE20K, COCO-Stuff-164k, Pascal VOC 2012 aug) share. Only names MMSeg's configs lack,
# so it sits beside an MMSeg DeepLabV3-R50 config in `_base_`; the leaf configs take the pieces with
# `model = {{_base_.deeplabv3_r18_d8}}` etc. (see baselines/deeplabv3_r18_ade20k_no_distill.py).
custom_imports = dict(imports=['gdkd_seg'], allow_failed_imports=False)

# MMSeg ships DeepLabV3-R18-D8 for Cityscapes only. These are the changes its
# deeplabv3_r18-d8_4xb2-80k_cityscapes-512x1024.py makes to its R50 config, applied to the R50 config of each dataset.
deeplabv3_r18_d8 = dict(
    pretrained='open-mmlab://resnet18_v1c',
    backbone=dict(depth=18),
    decode_head=dict(in_channels=512, channels=128),
    auxiliary_head=dict(in_channels=256, channels=64))

# MMSeg's schedule and batch (4 GPUs x 4 images), with the loader of the Cityscapes reference config: 8 workers,
# persistent and pinned (configs/README.md, "Data loader"; the 512x512 crops of these datasets cost less per image).
gpu_train_loader = dict(num_workers=8, persistent_workers=True, pin_memory=True)
# Stop at the first NaN/inf loss term; save the random streams so that --resume continues the same run.
safe_default_hooks = dict(
    checkpoint=dict(max_keep_ckpts=3),
    non_finite_loss=dict(type='NonFiniteLossHook'),
    random_state=dict(type='RandomStateHook'))
# 4 GPUs x 4 images; with another total batch pass --cfg-options auto_scale_lr.enable=True to scale the lr.
auto_scale_lr = dict(enable=False, base_batch_size=16)
