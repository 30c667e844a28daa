# Demo baseline: the GDKD demo student trained without distillation, on the identical schedule.
_base_ = ['./gdkd_toy.py']
model = dict(_delete_=True, **_base_.model.student)
custom_hooks = []  # DistillWarmupHook needs a distiller
