# Baseline: channel-wise distillation of the logits (CWD, Shu et al., 2021) in place of GDKD. Teacher, student and
# schedule are those of configs/gdkd/deeplabv3_r101_to_r18_cityscapes.py.
#   8 GPUs: tools/dist_train.sh configs/baselines/deeplabv3_r101_to_r18_cwd_cityscapes.py 8
_base_ = ['../gdkd/deeplabv3_r101_to_r18_cityscapes.py']

# tau=1, loss_weight=5: the Cityscapes logit settings of the CWD authors' code and of MMRazor
# (cwd_logits_pspnet_r101_d8_pspnet_r18_d8_512x1024_cityscapes_80k.py), whose loss is normalised as CWDLoss is
# (KL summed over pixels, averaged over images and channels, times T^2).
# Decode logits only, as MMRazor's config (it records decode_head.conv_seg) and the CWD authors' logit distillation:
# weight 5 was tuned without an auxiliary term, so the auxiliary head is not distilled here.
model = dict(
    aux_distill_weight=0.0,
    distill_losses=dict(
        _delete_=True,
        loss_cwd=dict(type='CWDLoss', temperature=1.0, loss_weight=5.0)))
