# GDKD: ResNet-50 teacher -> ResNet-18 student on CIFAR-100 (mmpretrain's CIFAR ResNets, ResNet_CIFAR: 3x3 stem,
# no max-pool).
# The authors' CIFAR-100 settings: 240 epochs, batch 64 on one GPU, SGD lr 0.05, momentum 0.9, weight decay 5e-4,
# lr x0.1 at epochs 150/180/210, student CE weight 1; GDKD k=5, w0=1, w1=1, w2=8, T=4, with the distillation
# weight ramped up epoch by epoch over the first 20 epochs.
#   1 GPU: python tools/train.py configs/cls/resnet50_to_resnet18_cifar100_gdkd.py
# Data: mmpretrain's CIFAR100 dataset reads (and, when missing, downloads) the python version of CIFAR-100 into
# data/cifar100.
# Teacher: mmpretrain's zoo ResNet-50 for CIFAR-100 (configs/resnet/metafile.yml: resnet50_8xb16_cifar100). To
# distil from a teacher of your own, train it with mmpretrain's configs/resnet/resnet50_8xb16_cifar100.py
# and pass --cfg-options model.teacher_ckpt=PATH.
_base_ = [
    'mmpretrain::_base_/datasets/cifar100_bs16.py',
    'mmpretrain::_base_/schedules/cifar10_bs128.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['gdkd_seg'], allow_failed_imports=False)

num_classes = 100
model = dict(
    type='ClsDistiller',
    # mmpretrain's _base_/models/resnet18_cifar.py with 100 classes
    student=dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet_CIFAR', depth=18, num_stages=4, out_indices=(3, ), style='pytorch'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=512,
                  loss=dict(type='CrossEntropyLoss', loss_weight=1.0))),
    teacher='mmpretrain::resnet/resnet50_8xb16_cifar100.py',
    teacher_ckpt=('https://download.openmmlab.com/mmclassification/v0/resnet/'
                  'resnet50_b16x8_cifar100_20210528-67b58a1b.pth'),
    # ClsDistiller sets ignore_index=-1 (classification has no ignore label)
    distill_losses=dict(
        loss_gdkd=dict(type='GDKDLoss', k=5, w0=1.0, w1=1.0, w2=8.0, temperature=4.0, loss_weight=1.0)))

# CIFAR's 32x32 images are in memory, but their pipeline (pad-crop, flip, pack) still costs time per image
# (docs/classification.md): 4 workers instead of mmpretrain's 2. persistent_workers saves restarting them in each of
# the 240 epochs; pin_memory makes the copy to the GPU asynchronous.
train_dataloader = dict(batch_size=64, num_workers=4, persistent_workers=True, pin_memory=True)
val_dataloader = dict(batch_size=64)
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[150, 180, 210], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=240, val_interval=1)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
# The authors' WARMUP: 20 (their factor min(epoch / 20, 1), epochs counted from 1): 1/20 during the first epoch,
# 2/20 during the second, ..., full from epoch 20 on.
custom_hooks = [dict(type='DistillWarmupHook', warmup_epochs=20)]
# one GPU x 64 images; with another total batch pass --cfg-options auto_scale_lr.enable=True to scale the lr.
auto_scale_lr = dict(enable=False, base_batch_size=64)
