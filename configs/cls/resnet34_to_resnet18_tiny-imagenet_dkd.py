# DKD baseline for configs/cls/resnet34_to_resnet18_tiny-imagenet_gdkd.py: everything identical except the loss.
# The authors' DKD settings for this pair (ZaberKo/GDKD configs/TL/tiny-imagenet/r34_r18/dkd.yaml): beta=0.5, T=1,
# alpha their default 1.0.
_base_ = ['./resnet34_to_resnet18_tiny-imagenet_gdkd.py']

model = dict(distill_losses=dict(
    _delete_=True, loss_dkd=dict(type='DKDLoss', alpha=1.0, beta=0.5, temperature=1.0, loss_weight=1.0)))
