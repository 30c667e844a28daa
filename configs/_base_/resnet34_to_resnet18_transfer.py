# What the GDKD authors' transfer benchmarks (Tiny-ImageNet, CUB-200-2011; ZaberKo/GDKD configs/TL/<set>/r34_r18/)
# share: an ImageNet-pretrained ResNet-18 student and a ResNet-34 teacher fine-tuned on the target set, both with 200
# classes at 224x224 (ImageNet's train/test transforms), batch 64 on one GPU, SGD momentum 0.9, weight decay 1e-3,
# 100 epochs, lr x0.1 at two milestones, student CE weight 1, GDKD. The leaf configs set the data, lr and milestones.
_base_ = ['mmpretrain::resnet/resnet18_8xb32_in1k.py']
custom_imports = dict(imports=['gdkd_seg'], allow_failed_imports=False)

data_preprocessor = dict(num_classes=200)
_resnet_200 = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet', depth=18, num_stages=4, out_indices=(3, ), style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=200, in_channels=512,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, 5)))
model = dict(
    _delete_=True,
    type='ClsDistiller',
    # mmpretrain's ImageNet ResNet-18 (configs/resnet/metafile.yml: resnet18_8xb32_in1k) as the starting point, a new
    # 200-class head, as the authors' get_imagenet_model(pretrained=True, num_classes=200)
    student=dict(_resnet_200, backbone=dict(_resnet_200['backbone'], init_cfg=dict(
        type='Pretrained', prefix='backbone',
        checkpoint=('https://download.openmmlab.com/mmclassification/v0/resnet/'
                    'resnet18_8xb32_in1k_20210831-fbbb1da6.pth')))),
    # The authors fine-tune an ImageNet ResNet-34 on the target set (their configs/TL/<set>/vanilla/r34.yaml) and
    # publish no weights; nor does mmpretrain's zoo. Train one, then: --cfg-options model.teacher_ckpt=PATH.
    teacher=dict(_resnet_200, backbone=dict(_resnet_200['backbone'], depth=34),
                 data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=200, mean=[123.675, 116.28, 103.53],
                                        std=[58.395, 57.12, 57.375], to_rgb=True)),
    # the authors' GDKD settings on both sets: k=5 (their default TOPK), w0=0.5, w1=1, w2=1, T=1
    distill_losses=dict(
        loss_gdkd=dict(type='GDKDLoss', k=5, w0=0.5, w1=1.0, w2=1.0, temperature=1.0, loss_weight=1.0)))

# Persistent, pinned loaders as in the other cls configs; 8 workers for ImageNet-style decoding at batch 64.
train_dataloader = dict(batch_size=64, num_workers=8, persistent_workers=True, pin_memory=True)
val_dataloader = dict(batch_size=64)
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(type='SGD', momentum=0.9, weight_decay=1e-3))
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=1)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=3))
# The authors' WARMUP: 1 scales the distillation loss by min(epoch / 1, 1) with epochs counted from 1: the full
# weight from the first step, so no DistillWarmupHook.
custom_hooks = []
# one GPU x 64 images; with another total batch pass --cfg-options auto_scale_lr.enable=True to scale the lr.
auto_scale_lr = dict(enable=False, base_batch_size=64)
