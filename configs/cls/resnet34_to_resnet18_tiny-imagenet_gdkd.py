# GDKD: ResNet-34 teacher (fine-tuned on Tiny-ImageNet) -> ImageNet-pretrained ResNet-18 on Tiny-ImageNet (200
# classes, 64x64 images, upscaled to 224 as by the authors). The authors' settings (ZaberKo/GDKD
# configs/TL/tiny-imagenet/r34_r18/gdkd.yaml): 100 epochs, batch 64, SGD lr 0.001, momentum 0.9, weight decay 1e-3,
# lr x0.1 at epochs 30/60; GDKD k=5 (their default TOPK), w0=0.5, w1=1, w2=1, T=1. Shared settings and the teacher:
# configs/_base_/resnet34_to_resnet18_transfer.py.
#   1 GPU: python tools/train.py configs/cls/resnet34_to_resnet18_tiny-imagenet_gdkd.py \
#              --cfg-options model.teacher_ckpt=PATH/TO/resnet34_tiny-imagenet.pth
# Data: data/tiny-imagenet-200 with train/ and val/ in class folders (data/README.md).
_base_ = ['../_base_/resnet34_to_resnet18_transfer.py']

_data = dict(type='CustomDataset', data_root='data/tiny-imagenet-200')
train_dataloader = dict(dataset=dict(_data, _delete_=True, data_prefix='train',
                                     pipeline={{_base_.train_dataloader.dataset.pipeline}}))
val_dataloader = dict(dataset=dict(_data, _delete_=True, data_prefix='val',
                                   pipeline={{_base_.val_dataloader.dataset.pipeline}}))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=0.001))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[30, 60], gamma=0.1)
