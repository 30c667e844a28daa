# Demo baseline: the GDKD demo student distilled with classic KD instead, on the identical schedule.
_base_ = ['./gdkd_toy.py']
model = dict(distill_losses=dict(_delete_=True, loss_kd=dict(type='KDLoss', temperature=1.0)))
