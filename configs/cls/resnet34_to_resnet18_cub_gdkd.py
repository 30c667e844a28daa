# GDKD: ResNet-34 teacher (fine-tuned on CUB-200-2011) -> ImageNet-pretrained ResNet-18 on CUB-200-2011 (200 bird
# species, fine-grained transfer; ImageNet's 224 crops as by the authors, not mmpretrain's 448 CUB recipe). The
# authors' settings (ZaberKo/GDKD configs/TL/cub2011/r34_r18/gdkd.yaml): 100 epochs, batch 64, SGD lr 0.0025,
# momentum 0.9, weight decay 1e-3, lr x0.1 at epochs 40/80; GDKD k=5 (their default TOPK), w0=0.5, w1=1, w2=1, T=1.
# Shared settings and the teacher: configs/_base_/resnet34_to_resnet18_transfer.py.
#   1 GPU: python tools/train.py configs/cls/resnet34_to_resnet18_cub_gdkd.py \
#              --cfg-options model.teacher_ckpt=PATH/TO/resnet34_cub.pth
# Data: mmpretrain's CUB layout under data/CUB_200_2011 (data/README.md); its train/test split.
_base_ = ['../_base_/resnet34_to_resnet18_transfer.py']

_data = dict(type='CUB', data_root='data/CUB_200_2011')
train_dataloader = dict(dataset=dict(_data, _delete_=True, split='train',
                                     pipeline={{_base_.train_dataloader.dataset.pipeline}}))
val_dataloader = dict(dataset=dict(_data, _delete_=True, split='test',
                                   pipeline={{_base_.val_dataloader.dataset.pipeline}}))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=0.0025))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[40, 80], gamma=0.1)
