# GDKD + DIST: the reference GDKD config plus DIST's intra-class term, as GDKD's authors run it (seg-gdkd
# `--kd-method gdkd-dist`, losses/distiller/gdkd.py `GDKDDIST`). Teacher, student, schedule, GDKD settings,
# and auxiliary-head distillation are configs/gdkd/deeplabv3_r101_to_r18_cityscapes.py's.
#   8 GPUs: tools/dist_train.sh configs/gdkd/deeplabv3_r101_to_r18_gdkd_dist_cityscapes.py 8
_base_ = ['./deeplabv3_r101_to_r18_cityscapes.py']

# The authors add dist_intra_weight (default 1.0, which their scripts keep) x DIST's intra-class term (no
# inter-class term: beta=0) to GDKD, on GDKD's own p = softmax(z/T) at GDKD's T (1), over all pixels of each GPU's
# batch, unscaled by T^2; --lambda-kd (1) and the 0.4 of the auxiliary head multiply both, as the distiller's
# aux_distill_weight does here. Pixels: their p_s / p_t are every pixel's, ignored ones included (their GDKD
# computes them before masking), hence ignore_index=-1, a label no pixel has. (Their gdkd.py at commit 6b317654,
# given an ignore_index, drops the ignored rows before both terms, and only when more than 1000 pixels of the batch
# are; their scripts pass none.)
model = dict(
    distill_losses=dict(
        loss_dist_intra=dict(type='DISTLoss', beta=0.0, gamma=1.0, temperature=1.0, per_image_intra=False,
                             loss_weight=1.0, ignore_index=-1)))
