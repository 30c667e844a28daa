# GDKD: ResNet-34 teacher (mmpretrain zoo) -> ResNet-18 student on ImageNet-1k.
# The authors' ImageNet settings (those of DKD): 100 epochs, total batch 512 (8 GPUs x 64), SGD lr 0.2, momentum 0.9,
# weight decay 1e-4, lr x0.1 at epochs 30/60/90, student CE weight 1; GDKD k=5, w0=0.5, w1=1, w2=1, T=1, with the
# full distillation weight from the first step (their WARMUP: 1).
#   8 GPUs: tools/dist_train.sh configs/cls/resnet34_to_resnet18_imagenet_gdkd.py 8
#   test:   tools/test.py configs/cls/resnet34_to_resnet18_imagenet_gdkd.py work_dirs/.../epoch_100.pth
# Data: mmpretrain's ImageNet layout under data/imagenet (train/, val/, meta/); see mmpretrain's dataset docs.
_base_ = ['mmpretrain::resnet/resnet18_8xb32_in1k.py']
custom_imports = dict(imports=['gdkd_seg'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='ClsDistiller',
    student={{_base_.model}},  # mmpretrain's ResNet-18, trained from scratch
    teacher='mmpretrain::resnet/resnet34_8xb32_in1k.py',
    # mmpretrain's ResNet-34 (configs/resnet/metafile.yml: resnet34_8xb32_in1k)
    teacher_ckpt=('https://download.openmmlab.com/mmclassification/v0/resnet/'
                  'resnet34_8xb32_in1k_20210831-f257d4e6.pth'),
    # ClsDistiller sets ignore_index=-1 (classification has no ignore label)
    distill_losses=dict(
        loss_gdkd=dict(type='GDKDLoss', k=5, w0=0.5, w1=1.0, w2=1.0, temperature=1.0, loss_weight=1.0)))

# mmpretrain's 5 workers are for 32 images per GPU; 10 for 64 images (the pipeline's cost per image: docs/
# classification.md). Raise num_workers as far as the machine's cores allow (8 GPUs x 10 = 80 here).
# persistent_workers keeps the workers alive between epochs; pin_memory makes the copy to the GPU asynchronous.
train_dataloader = dict(batch_size=64, num_workers=10, persistent_workers=True, pin_memory=True)
val_dataloader = dict(batch_size=64)
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.2, momentum=0.9, weight_decay=1e-4))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[30, 60, 90], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=1)
# The authors' `WARMUP: 1` (ZaberKo/GDKD configs/imagenet/r34_r18/gdkd.yaml): their factor min(epoch / WARMUP, 1)
# counts epochs from 1, so it is 1 from the first step; warmup_epochs=1 is the same factor (logged as distill_factor).
custom_hooks = [dict(type='DistillWarmupHook', warmup_epochs=1)]
# 8 GPUs x 64 images; with another total batch pass --cfg-options auto_scale_lr.enable=True to scale the lr linearly.
auto_scale_lr = dict(enable=False, base_batch_size=512)
