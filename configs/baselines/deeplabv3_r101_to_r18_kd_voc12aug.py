# Baseline: per-pixel KD (Hinton et al.), KL(p_t || p_s) at T=1, in place of GDKD; everything else is
# configs/gdkd/deeplabv3_r101_to_r18_voc12aug.py.
_base_ = ['../gdkd/deeplabv3_r101_to_r18_voc12aug.py']

model = dict(distill_losses=dict(_delete_=True, loss_kd=dict(type='KDLoss', temperature=1.0, loss_weight=1.0)))
