"""The GDKD loss family as pure functions: GDKD, its three-group variant, DKD and KD.

Each is the grouped KD loss of :mod:`gdkd_seg.losses.kernels` on its own partition of the classes: GDKD splits off
the teacher's top-k (or top-p) classes, GDKD3 splits those again into the top-1 and the rest of the top-k, DKD
splits off the ground-truth class, KD keeps a single group. Options are checked and inputs prepared
(:mod:`.options`, :mod:`.inputs`) before the dispatch, so every implementation gets the same.
"""
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

from .inputs import check_inputs, to_compute_dtype, valid_mask
from .kernels import grouped_kd_loss, pytorch
from .options import check_options

# The authors' mass clamp (seg-gdkd, GDKD): float32's machine epsilon, the clamp of their float32 and AMP runs.
AUTHORS_MASS_CLAMP = float(torch.finfo(torch.float32).eps)


def gdkd_loss(student_logits: Tensor, teacher_logits: Tensor, gt: Optional[Tensor] = None, k: int = 3,
              w0: float = 1.0, w1: float = 1.0, w2: float = 2.0, temperature: float = 1.0, ignore_index: int = 255,
              partition: str = 'topk', top_p: float = 0.9, k_max: Optional[int] = None,
              logit_standardize: bool = False, ignore_incorrect: bool = False, entropy_weight: float = 0.0,
              mass_clamp: Optional[float] = None) -> Tuple[Tensor, Dict[str, Tensor]]:
    """GDKD: the teacher's top classes K against the rest O.

    Args:
        student_logits: ``(B, C, h, w)`` or ``(N, C)``.
        teacher_logits: ``(B, C, H, W)`` or ``(N, C)``; resized bilinearly to the student's size.
        gt: labels for the valid-pixel mask (``ignore_index`` pixels are left out), or None.
        k: size of K for ``partition='topk'`` (the authors' segmentation default is 3).
        w0, w1, w2: weights of KL(b_t‖b_s), KL within K and KL within O.
        temperature: softmax temperature T; the loss is multiplied by T².
        ignore_index: label left out of the mean.
        partition: ``'topk'`` (fixed k) or ``'topp'``: per pixel the smallest set of the teacher's classes whose
            probability (at temperature T) reaches ``top_p``, at most ``k_max`` classes (default: no cap).
        top_p: probability the top group must reach, for ``partition='topp'``.
        k_max: cap on the top group's size, for ``partition='topp'``.
        logit_standardize: z-score each pixel's logits over the classes, teacher and student separately, before
            the temperature; top-p then reads the standardized teacher (Sun et al., CVPR 2024; see
            :func:`gdkd_seg.losses.inputs.standardize_logits`).
        ignore_incorrect: the KL terms count only the pixels where the teacher is right: its argmax equals the
            label (besides leaving ``ignore_index`` pixels out). The argmax is taken at the student's resolution,
            on the teacher's logits after their bilinear resize, against the labels resized (nearest) to it: the
            meaning of ``ignore_incorrect`` in the authors' seg-gdkd ``GDKD``, whose teacher and student logits
            share one size. Needs ``gt``.
        entropy_weight: subtract ``entropy_weight × H``, H the entropy of the student's ``softmax(z/T)`` (the
            distribution the KL terms use) averaged over every pixel, ignored and incorrect ones included, without
            T²: seg-gdkd's ``entropy_weight`` (their "entropy reg term (maximize) to avoid extreme predictions").
            H is exact, from log-softmax; seg-gdkd clamps the probabilities to [eps, 1 − eps] first (a difference
            below C × 2e-6 in float32), and at commit 6b317654 adds the term only when between 1 and 1000 pixels
            of the batch are left out; here it is added to every batch with a valid pixel (a batch without one
            contributes 0, the term included, as theirs). 0 (the default) leaves it out.
        mass_clamp: None (the default): the top and rest masses exact, from log-sum-exps. A float eps: both
            masses of teacher and student clamped to ``[eps, 1 − eps]`` before their logs, and no gradient through
            a clamped student mass, as the authors' code does with ``eps = torch.finfo(torch.float32).eps``
            (:data:`AUTHORS_MASS_CLAMP`); see docs/losses.md for where the two differ.

    Returns:
        ``(loss, parts)``; parts ``kl_mass``, ``kl_top``, ``kl_other`` are the unweighted KL terms averaged over
        valid pixels, and ``entropy`` (H above) when ``entropy_weight > 0`` (all detached).
    """
    num_classes = student_logits.shape[1]
    check_options(num_classes, w0=w0, w1=w1, w2=w2, temperature=temperature, ignore_index=ignore_index,
                  partition=partition, logit_standardize=logit_standardize, ignore_incorrect=ignore_incorrect,
                  entropy_weight=entropy_weight, mass_clamp=mass_clamp,
                  **(dict(k=k) if partition == 'topk' else dict(top_p=top_p, k_max=k_max)))
    if ignore_incorrect and gt is None:
        raise ValueError('gdkd_loss with ignore_incorrect=True needs gt: it keeps the pixels where the teacher\'s '
                         'argmax equals the label')
    student_logits, teacher_logits, labels = check_inputs(student_logits, teacher_logits, gt, ignore_index,
                                                          logit_standardize)
    valid = labels
    if ignore_incorrect:  # standardization keeps each pixel's argmax, so either logits give the same mask
        valid = labels.valid & (teacher_logits.argmax(1) == labels.labels)
    if partition == 'topk':
        partition_args = dict(top_k=k, rank_groups=[0] * k)
    else:
        scaled_teacher = to_compute_dtype(teacher_logits) / temperature
        top_logits, head_indices = scaled_teacher.topk(k_max or num_classes, dim=1)
        top_probs = (top_logits - scaled_teacher.logsumexp(1, keepdim=True)).exp()
        # a class joins K while the mass of the classes ranked above it is still below top_p
        partition_args = dict(head_indices=head_indices, head_groups=((top_probs.cumsum(1) - top_probs) >= top_p))
    loss, kl_mass, kl_groups = grouped_kd_loss(student_logits, teacher_logits, valid, w0, (w1, w2), temperature,
                                               mass_clamp=mass_clamp, **partition_args)
    parts = dict(kl_mass=kl_mass, kl_top=kl_groups[0], kl_other=kl_groups[1])
    if entropy_weight > 0:
        entropy = _mean_entropy(student_logits, temperature)
        term = entropy_weight * entropy
        if valid is not None:  # no valid pixel: no term; a tensor factor, so no wait for the GPU in every step
            term = term * valid_mask(valid).any()
        loss = loss - term
        parts['entropy'] = entropy.detach()
    return loss, parts


def _mean_entropy(logits: Tensor, temperature: float) -> Tensor:
    """Mean over every pixel (row) of the entropy of ``softmax(z/T)``, ``−Σ p·log p`` with ``log p`` from
    log-softmax: finite for any finite logits (a probability that underflows to 0 meets a finite log-probability),
    in the compute dtype, outside autocast."""
    with torch.autocast(logits.device.type, enabled=False):
        log_probs = (to_compute_dtype(logits) / temperature).log_softmax(1)
        return -(log_probs.exp() * log_probs).sum(1).mean()


def gdkd_pixel_terms(student_logits: Tensor, teacher_logits: Tensor, k: int = 3, temperature: float = 1.0,
                     mass_clamp: Optional[float] = None) -> Dict[str, Tensor]:
    """GDKD's three unweighted terms per pixel (``partition='topk'``), for pictures of where a student disagrees.

    The same computation as :func:`gdkd_loss` (its PyTorch implementation, on any device), before the mean: the
    means of these maps over valid pixels are its parts of the same names.

    Args:
        student_logits, teacher_logits: ``(B, C, H, W)`` at the same size.
        k: the teacher's top group size.
        temperature: softmax temperature T.
        mass_clamp: None, or the eps of the authors' mass clamp (as in :func:`gdkd_loss`).

    Returns:
        ``kl_mass`` (KL between the top/rest masses), ``kl_top`` (within the teacher's top-k), ``kl_other``
        (within the rest), each ``(B, H, W)``, in the logits' compute dtype.
    """
    check_options(num_classes=student_logits.shape[1], k=k, temperature=temperature, mass_clamp=mass_clamp)
    partition = dict(top_k=k, rank_groups=[0] * k)
    _, kl_mass, kl_groups = pytorch.grouped_kl_per_pixel(student_logits, teacher_logits, partition, (1.0, 1.0), 1.0,
                                                         temperature, mass_clamp)
    return dict(kl_mass=kl_mass, kl_top=kl_groups[0], kl_other=kl_groups[1])


def gdkd3_loss(student_logits: Tensor, teacher_logits: Tensor, gt: Optional[Tensor] = None, k: int = 3,
               w0: float = 1.0, w1: float = 1.0, w2: float = 2.0, temperature: float = 1.0,
               ignore_index: int = 255, mass_clamp: Optional[float] = None) -> Tuple[Tensor, Dict[str, Tensor]]:
    """GDKD with three groups: the teacher's top-1, its top-2..k, and the rest.

    Args:
        k: the top group's size (>= 2 for a non-empty middle group).
        w0: weight of the KL between the three group masses.
        w1: weight of the KL within the top-2..k group (the top-1 group's within-KL is identically 0).
        w2: weight of the KL within the rest.
        mass_clamp: None, or the eps to which each of the three masses is clamped (as in :func:`gdkd_loss`).
        Others as in :func:`gdkd_loss`.

    Returns:
        ``(loss, parts)`` with parts ``kl_mass``, ``kl_mid``, ``kl_other``.
    """
    check_options(student_logits.shape[1], k=k, w0=w0, w1=w1, w2=w2, temperature=temperature,
                  ignore_index=ignore_index, mass_clamp=mass_clamp)
    student_logits, teacher_logits, labels = check_inputs(student_logits, teacher_logits, gt, ignore_index)
    loss, kl_mass, kl_groups = grouped_kd_loss(student_logits, teacher_logits, labels, w0, (0.0, w1, w2), temperature,
                                               top_k=k, rank_groups=[0] + [1] * (k - 1), mass_clamp=mass_clamp)
    return loss, dict(kl_mass=kl_mass, kl_mid=kl_groups[1], kl_other=kl_groups[2])


def dkd_loss(student_logits: Tensor, teacher_logits: Tensor, gt: Tensor, alpha: float = 1.0, beta: float = 8.0,
             temperature: float = 1.0, ignore_index: int = 255, logit_standardize: bool = False,
             mass_clamp: Optional[float] = None) -> Tuple[Tensor, Dict[str, Tensor]]:
    """DKD (Zhao et al., 2022): the ground-truth class against the rest.

    ``alpha`` weighs the target/non-target mass KL (TCKD), ``beta`` the KL among non-target classes (NCKD);
    ``logit_standardize`` and ``mass_clamp`` (the target and non-target masses) as in :func:`gdkd_loss`.

    Returns:
        ``(loss, parts)`` with parts ``kl_mass`` (TCKD) and ``kl_other`` (NCKD), unweighted.
    """
    if gt is None:
        raise ValueError('dkd_loss needs gt: DKD splits the classes at the ground-truth label')
    check_options(alpha=alpha, beta=beta, temperature=temperature, ignore_index=ignore_index,
                  logit_standardize=logit_standardize, mass_clamp=mass_clamp)
    student_logits, teacher_logits, labels = check_inputs(student_logits, teacher_logits, gt, ignore_index,
                                                          logit_standardize)
    loss, kl_mass, kl_groups = grouped_kd_loss(student_logits, teacher_logits, labels, alpha, (0.0, beta), temperature,
                                               head_from_labels=True, mass_clamp=mass_clamp)
    return loss, dict(kl_mass=kl_mass, kl_other=kl_groups[1])


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, gt: Optional[Tensor] = None, temperature: float = 1.0,
            ignore_index: int = 255, logit_standardize: bool = False) -> Tuple[Tensor, Dict[str, Tensor]]:
    """Classic KD (Hinton et al.): per-pixel ``T²·KL(softmax(z_t/T) ‖ softmax(z_s/T))``; ``logit_standardize`` as
    in :func:`gdkd_loss`.

    Returns:
        ``(loss, parts)`` with part ``kl``.
    """
    check_options(temperature=temperature, ignore_index=ignore_index, logit_standardize=logit_standardize)
    student_logits, teacher_logits, labels = check_inputs(student_logits, teacher_logits, gt, ignore_index,
                                                          logit_standardize)
    loss, _, kl_groups = grouped_kd_loss(student_logits, teacher_logits, labels, 0.0, (1.0,), temperature)
    return loss, dict(kl=kl_groups[0])
