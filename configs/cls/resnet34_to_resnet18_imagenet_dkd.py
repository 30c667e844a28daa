# DKD baseline for configs/cls/resnet34_to_resnet18_imagenet_gdkd.py: everything identical except the loss.
# DKD with the authors' ImageNet weights (DKD's configs/imagenet/r34_r18/dkd.yaml): alpha=0.5 (TCKD), beta=0.5 (NCKD),
# T=1. alpha=0.5 also matches GDKD's w0=0.5, the weight of the same kind of term (KL between group masses).
#   8 GPUs: tools/dist_train.sh configs/cls/resnet34_to_resnet18_imagenet_dkd.py 8
_base_ = ['./resnet34_to_resnet18_imagenet_gdkd.py']

model = dict(
    distill_losses=dict(
        _delete_=True,
        loss_dkd=dict(type='DKDLoss', alpha=0.5, beta=0.5, temperature=1.0, loss_weight=1.0)))
