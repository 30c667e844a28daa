"""DIST (Huang et al., NeurIPS 2022, "Knowledge Distillation from A Stronger Teacher") as a pure function.

DIST matches relations instead of values. On ``p = softmax(z / T)`` of every pixel (a row of C probabilities):

* inter-class: ``1 − Pearson(p_s, p_t)`` over the C classes of each pixel, averaged over pixels;
* intra-class: ``1 − Pearson(p_s[:, c], p_t[:, c])`` over the pixels of each class c, averaged over classes;

``L = β · inter + γ · intra``. For segmentation this is how the DIST authors' segmentation code
(hunto/DIST_KD, ``segmentation/losses/dist_kd.py``) and GDKD's (ZaberKo/seg-gdkd, ``losses/distiller/dist.py``)
compute it: every pixel of the batch is a row, the intra-class correlation runs over all rows of the batch.
"""
from typing import Dict, Optional, Tuple, Union

import torch
from torch import Tensor

from ..utils.errors import ConfigError
from .inputs import check_inputs, mean_over_valid, to_compute_dtype
from .options import check_options

# Added to the product of the two centred norms, as both authors' codes do. A class whose probability barely varies
# over the pixels (a class absent from the batch: p ~ 1e-6 everywhere) has centred norms whose product is ~1e-8 or
# less, where float32 probabilities are mostly rounding noise; there the correlation fades to 0 (term 1, gradient
# 0) instead of correlating noise, and a constant vector gives 0 instead of 0/0.
PEARSON_EPS = 1e-8


def check_dist_options(beta: float, gamma: float, temperature: float, per_image_intra: bool,
                       ignore_index: int) -> None:
    """Validate DIST's options (see :func:`dist_loss`); shared by the function and ``DISTLoss``.

    Raises:
        ConfigError: (a ValueError) naming the option; also when both weights are 0 (the loss would be identically 0).
    """
    check_options(beta=beta, gamma=gamma, temperature=temperature, per_image_intra=per_image_intra,
                  ignore_index=ignore_index)
    if beta == 0 and gamma == 0:
        raise ConfigError('DIST with beta=0 and gamma=0 is identically 0; set beta (inter-class) or gamma '
                          '(intra-class) > 0')


def _pearson(x: Tensor, y: Tensor, dim: Union[int, Tuple[int, ...]], weights: Optional[Tensor] = None) -> Tensor:
    """Pearson correlation of ``x`` and ``y`` along ``dim`` (one or several dims, reduced away), over the entries
    where ``weights`` (0/1, broadcast to ``x``) is 1, or over all of them: ``(x̃·ỹ) / (‖x̃‖·‖ỹ‖ + PEARSON_EPS)`` with
    x̃ = x − its mean."""
    if weights is None:
        x_centred = x - x.mean(dim, keepdim=True)
        y_centred = y - y.mean(dim, keepdim=True)
    else:
        count = weights.sum(dim, keepdim=True).clamp(min=1)
        x_centred = (x - (x * weights).sum(dim, keepdim=True) / count) * weights
        y_centred = (y - (y * weights).sum(dim, keepdim=True) / count) * weights
    norms = torch.linalg.vector_norm(x_centred, dim=dim) * torch.linalg.vector_norm(y_centred, dim=dim)
    return (x_centred * y_centred).sum(dim) / (norms + PEARSON_EPS)


def dist_loss(student_logits: Tensor, teacher_logits: Tensor, gt: Optional[Tensor] = None, beta: float = 1.0,
              gamma: float = 1.0, temperature: float = 1.0, per_image_intra: bool = False,
              ignore_index: int = 255) -> Tuple[Tensor, Dict[str, Tensor]]:
    """DIST: ``β·(1 − mean Pearson over classes per pixel) + γ·(1 − mean Pearson over pixels per class)``.

    Pixels: those whose label is ``ignore_index`` are left out of both terms: they count neither in the mean of the
    inter-class term nor in any intra-class correlation (whose means and norms run over the valid pixels only). The
    DIST authors' segmentation code takes every pixel (it never reads the labels); pass a label no pixel has (e.g.
    ``ignore_index=-1``) or ``gt=None`` for that. With no valid pixel the loss is 0 (with a gradient path).

    Intra-class rows: all valid pixels of the batch (as the authors; under data parallelism the batch is each
    process's, 2 images per GPU in the Cityscapes configs), or with ``per_image_intra=True`` those of each image,
    correlated per (image, class) and averaged over the images that have a valid pixel and the classes.

    Temperature: no T² factor. KL's gradient shrinks as 1/T² at large T, which Hinton's T² undoes; a Pearson
    correlation is invariant to the affine map ``p ≈ 1/C + (z − mean z)/(C·T)`` that softmax becomes at large T,
    so DIST's value and gradient tend to those of the correlation of the logits themselves, with no 1/T² to undo.
    The authors' segmentation code (both repositories above) has no T²; their classification code multiplies both
    terms by τ² (set ``loss_weight=T**2`` to reproduce it). At the Cityscapes setting T = 1 the two agree.

    Numerics: probabilities, means and correlations are computed in float32 (float64 for float64 inputs; fp16/bf16
    inputs are promoted), outside autocast. ``PEARSON_EPS`` (1e-8, as the authors) is added to the product of the
    two centred norms, so a class of (near-)constant probability gives a correlation of 0, not 0/0 or noise.

    Args:
        student_logits: ``(B, C, h, w)``, or ``(N, C)`` rows (classification: the intra-class term runs over the
            batch, as the DIST paper's).
        teacher_logits: same layout; resized bilinearly to the student's spatial size.
        gt: labels ``(B, H, W)`` / ``(B, 1, H, W)`` / ``(N,)`` (resized nearest) for the valid-pixel mask, or None
            (every pixel counts).
        beta: weight of the inter-class term (≥ 0).
        gamma: weight of the intra-class term (≥ 0; not both 0).
        temperature: softmax temperature T (> 0); no T² (see above).
        per_image_intra: correlate each class over the pixels of each image rather than of the whole batch
            (``(B, C, h, w)`` logits only).
        ignore_index: label of the pixels left out.

    Returns:
        ``(loss, parts)``: ``parts`` has ``inter`` when ``beta > 0`` and ``intra`` when ``gamma > 0``, each the
        unweighted term, detached.
    """
    check_dist_options(beta, gamma, temperature, per_image_intra, ignore_index)
    if per_image_intra and student_logits.dim() != 4:
        raise ValueError(f'per_image_intra=True needs (B, C, H, W) logits (pixels grouped by image), got '
                         f'student_logits of shape {tuple(student_logits.shape)}; (N, C) rows have no images')
    student_logits, teacher_logits, labels = check_inputs(student_logits, teacher_logits, gt, ignore_index)
    valid = None if labels is None else labels.valid
    with torch.autocast(student_logits.device.type, enabled=False):
        compute = torch.promote_types(to_compute_dtype(student_logits).dtype, teacher_logits.dtype)
        probs_student = (student_logits.to(compute) / temperature).softmax(1)
        probs_teacher = (teacher_logits.to(compute) / temperature).softmax(1)
        # (images, C, pixels), each class's values contiguous: (N, C) rows are one image of N pixels
        planes_student = probs_student.flatten(2) if probs_student.dim() == 4 else probs_student.t()[None]
        planes_teacher = probs_teacher.flatten(2) if probs_teacher.dim() == 4 else probs_teacher.t()[None]
        pixel_valid = None if valid is None else valid.reshape(planes_student.shape[0], 1, -1)

        loss = planes_student.new_zeros(())
        parts = {}
        if beta > 0:
            per_pixel = 1 - _pearson(planes_student, planes_teacher, dim=1)
            inter = mean_over_valid(per_pixel, None if pixel_valid is None else pixel_valid[:, 0])
            loss = loss + beta * inter
            parts['inter'] = inter.detach()
        if gamma > 0:
            pixel_dims = 2 if per_image_intra else (0, 2)
            weights = None if pixel_valid is None else pixel_valid.to(compute)
            per_class = 1 - _pearson(planes_student, planes_teacher, dim=pixel_dims, weights=weights)
            if pixel_valid is None:
                intra = per_class.mean()
            else:  # (image,) class pairs without a valid pixel have no correlation and do not count
                intra = mean_over_valid(per_class, pixel_valid.any(pixel_dims).expand_as(per_class))
            loss = loss + gamma * intra
            parts['intra'] = intra.detach()
    return loss, parts
