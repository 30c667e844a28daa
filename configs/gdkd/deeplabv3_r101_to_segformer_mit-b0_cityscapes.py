# GDKD across architectures: DeepLabV3-R101-D8 teacher (CNN, MMSeg zoo, logits at 1/8) -> SegFormer MiT-B0
# student (transformer, no auxiliary head, logits at 1/4) on Cityscapes, on MMSeg's SegFormer recipe, not the
# reference's 40k SGD schedule: 160k iterations, 8 GPUs x 1 image, crop 1024x1024, AdamW lr 6e-5 (weight decay 0.01,
# none on norms and position blocks, heads at 10x lr), linear warm-up over 1.5k iterations then poly decay (power 1),
# sliding-window test. The teacher's logits are resized (bilinear) to the student's 1/4 grid before every loss.
#   8 GPUs: tools/dist_train.sh configs/gdkd/deeplabv3_r101_to_segformer_mit-b0_cityscapes.py 8
_base_ = [
    'mmseg::segformer/segformer_mit-b0_8xb1-160k_cityscapes-1024x1024.py', '../_base_/gdkd_distiller.py',
    '../_base_/cityscapes_teacher.py'
]
custom_imports = dict(imports=['gdkd_seg'], allow_failed_imports=False)

# The student is MMSeg's segformer_mit-b0_8xb1-160k_cityscapes-1024x1024.py model with its ImageNet MiT-B0 weights;
# teacher, its weights and GDKD settings are the reference config's (the same base files). SegFormer has no
# auxiliary head, so only the decode logits are distilled.
model = {**_base_.gdkd_distiller, **_base_.cityscapes_teacher, '_delete_': True, 'student': _base_.model,
         'aux_distill_weight': 0.0}

# The reference's loader sizing (8 workers, persistent, pinned; see its comment) and its safety hooks; no distillation
# warm-up (the learning rate has MMSeg's 1.5k-iteration one).
train_dataloader = dict(num_workers=8, persistent_workers=True, pin_memory=True)
default_hooks = dict(
    non_finite_loss=dict(type='NonFiniteLossHook'),
    random_state=dict(type='RandomStateHook'))
custom_hooks = []
# 8 GPUs x 1 image; with fewer GPUs pass --cfg-options auto_scale_lr.enable=True to scale the learning rate.
auto_scale_lr = dict(enable=False, base_batch_size=8)
