"""The GDKD loss family as pure functions: GDKD, its three-group variant, DKD and KD.

All four are one computation on a per-pixel partition of the classes into groups:

    L = T² · [ w_mass · KL(b_t ‖ b_s) + Σ_g w_g · KL(p_t^g ‖ p_s^g) ]

with p = softmax(z / T), b the probability mass of each group and p^g the distribution within group g. Only the
partition differs: GDKD splits off the teacher's top-k (or top-p) classes, GDKD3 splits those again into the
top-1 and the rest of the top-k, DKD splits off the ground-truth class, KD keeps a single group.

Logits are first laid out as rows, one pixel per row ``(pixels, classes)``, so that every class-dim operation runs
on contiguous memory. A partition is given by a few "head" classes per pixel (``head_indices``, with the group of each in
``head_groups``); every other class, the tail, belongs to the last group. Numerics:

* group log-masses are log-sum-exps: over the few head logits directly, and over the tail as
  ``max + log Σ exp(z − max)`` with the tail's own maximum, so a confident teacher (logits of 30+, masses of 1e-20
  outside its top classes) and fp16/bf16 inputs stay finite. No probabilities are summed and logged;
* within-group KLs ``Σ_{i∈g} q_t(i)·(log q_t(i) − log q_s(i))`` form each log-probability ``z_i/T − lse_g(z/T)``
  before subtracting, so a large common offset between teacher and student logits cancels exactly;
* the student gradient has a closed form per class i in group g,
  ``∂L/∂s_i = T² · [w_mass · q_s(i)·(b_s(g) − b_t(g)) + w_g · (q_s(i) − q_t(i))]``, recomputed in backward from
  the inputs and a few per-pixel statistics, so no (pixels × classes) tensor is kept between forward and backward.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .inputs import mean_over_valid, pixel_rows, to_compute_dtype

NEG_INF = float('-inf')


def _segment_logsumexp(values: Tensor, segments: Tensor, num_segments: int) -> Tensor:
    """Log-sum-exp of ``values`` ``(B, k, ...)`` per segment id ``(B, k, ...)``: ``(B, m, ...)``, -inf if empty."""
    shape = (values.shape[0], num_segments) + values.shape[2:]
    maxima = values.new_full(shape, NEG_INF).scatter_reduce_(1, segments, values, 'amax')
    sums = values.new_zeros(shape).scatter_add_(1, segments, (values - maxima.gather(1, segments)).exp())
    return maxima + sums.log()


def _scaled_copy(logits: Tensor, temperature: float) -> Tensor:
    """A fresh ``z / T`` in the compute dtype, for in-place work."""
    scaled = logits.to(torch.promote_types(logits.dtype, torch.float32), copy=True)
    return scaled.mul_(1.0 / temperature) if temperature != 1.0 else scaled


def _tail_exp(logits: Tensor, head_indices: Tensor, temperature: float,
              tail_max: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """``exp(z/T − max of the tail)`` at tail classes and 0 at head classes, with that maximum ``(N, 1)``."""
    tail = _scaled_copy(logits, temperature).scatter_(1, head_indices, NEG_INF)
    if tail_max is None:
        tail_max = tail.amax(1, keepdim=True)
    return tail.sub_(tail_max).exp_(), tail_max


def _group_shape(weights: Tensor, like: Tensor) -> Tensor:
    return weights.to(like).view(1, -1, *([1] * (like.dim() - 2)))


class _GroupedKL(torch.autograd.Function):
    """Per-pixel ``T²·[w_mass·KL(b_t‖b_s) + Σ_g w_g·KL(p_t^g‖p_s^g)]`` and its closed-form student gradient."""

    @staticmethod
    def forward(ctx, student_logits: Tensor, teacher_logits: Tensor, head_indices: Tensor, head_groups: Tensor,
                group_weights: Tensor, mass_weight: float, temperature: float) -> Tuple[Tensor, Tensor, Tensor]:
        num_groups = group_weights.numel()
        has_tail = head_indices.shape[1] < student_logits.shape[1]
        with torch.autocast(student_logits.device.type, enabled=False):
            student_head = to_compute_dtype(student_logits).gather(1, head_indices) / temperature
            teacher_head = to_compute_dtype(teacher_logits).gather(1, head_indices) / temperature
            lse_student = _segment_logsumexp(student_head, head_groups, num_groups)
            lse_teacher = _segment_logsumexp(teacher_head, head_groups, num_groups)
            # KL_g = Σ_{i∈g} q_t(i)·(log q_t(i) − log q_s(i)), with each log-probability formed before the two are
            # subtracted, so that a large common offset between teacher and student logits cancels exactly
            kl_groups = torch.zeros_like(lse_teacher)
            tail_max_student = tail_max_teacher = None
            if has_tail:
                tail_exp_teacher, tail_max_teacher = _tail_exp(teacher_logits, head_indices, temperature)
                tail_exp_student, tail_max_student = _tail_exp(student_logits, head_indices, temperature)
                lse_teacher[:, -1:] = torch.logaddexp(
                    lse_teacher[:, -1:], tail_max_teacher + tail_exp_teacher.sum(1, keepdim=True).log())
                lse_student[:, -1:] = torch.logaddexp(
                    lse_student[:, -1:], tail_max_student + tail_exp_student.sum(1, keepdim=True).log())
                log_ratio = _scaled_copy(teacher_logits, temperature).sub_(lse_teacher[:, -1:])
                student_log_q = torch.mul(to_compute_dtype(student_logits), 1.0 / temperature, out=tail_exp_student)
                log_ratio.sub_(student_log_q.sub_(lse_student[:, -1:]))
                kl_groups[:, -1:] = (log_ratio.mul_(tail_exp_teacher).sum(1, keepdim=True)
                                     * (tail_max_teacher - lse_teacher[:, -1:]).exp())
            teacher_head_log_q = teacher_head - lse_teacher.gather(1, head_groups)
            student_head_log_q = student_head - lse_student.gather(1, head_groups)
            kl_groups.scatter_add_(1, head_groups, teacher_head_log_q.exp() * (teacher_head_log_q - student_head_log_q))

            nonempty = lse_teacher > NEG_INF
            log_mass_student = lse_student - lse_student.logsumexp(1, keepdim=True)
            log_mass_teacher = lse_teacher - lse_teacher.logsumexp(1, keepdim=True)
            kl_mass = torch.where(nonempty, log_mass_teacher.exp() * (log_mass_teacher - log_mass_student),
                                  0.0).sum(1)
            total = temperature ** 2 * (mass_weight * kl_mass
                                        + (_group_shape(group_weights, kl_groups) * kl_groups).sum(1))

        ctx.save_for_backward(student_logits, teacher_logits, head_indices, head_groups, group_weights,
                              student_head, teacher_head, lse_student, lse_teacher, tail_max_student,
                              tail_max_teacher)
        ctx.mass_weight, ctx.temperature = mass_weight, temperature
        ctx.mark_non_differentiable(kl_mass, kl_groups)
        return total, kl_mass, kl_groups

    @staticmethod
    def backward(ctx, grad_total: Tensor, *unused_part_grads):
        (student_logits, teacher_logits, head_indices, head_groups, group_weights, student_head, teacher_head,
         lse_student, lse_teacher, tail_max_student, tail_max_teacher) = ctx.saved_tensors
        temperature = ctx.temperature
        with torch.autocast(student_logits.device.type, enabled=False):
            mass_gap = ((lse_student - lse_student.logsumexp(1, keepdim=True)).exp()
                        - (lse_teacher - lse_teacher.logsumexp(1, keepdim=True)).exp())
            weights = _group_shape(group_weights, lse_student)
            # ds/dz_s = 1/T against the loss's T²; per group: grad = coef_student·q_s + coef_teacher·q_t
            scale = temperature * grad_total.unsqueeze(1).to(lse_student)
            coef_student = scale * (ctx.mass_weight * mass_gap + weights)
            coef_teacher = -scale * weights

            grad_head = (coef_student.gather(1, head_groups)
                         * (student_head - lse_student.gather(1, head_groups)).exp()
                         + coef_teacher.gather(1, head_groups)
                         * (teacher_head - lse_teacher.gather(1, head_groups)).exp())
            if tail_max_student is not None:
                tail_exp_student, _ = _tail_exp(student_logits, head_indices, temperature, tail_max_student)
                tail_exp_teacher, _ = _tail_exp(teacher_logits, head_indices, temperature, tail_max_teacher)
                grad = tail_exp_student.mul_(
                    coef_student[:, -1:] * (tail_max_student - lse_student[:, -1:]).exp()).add_(
                    tail_exp_teacher.mul_(coef_teacher[:, -1:] * (tail_max_teacher - lse_teacher[:, -1:]).exp()))
            else:
                grad = torch.zeros_like(to_compute_dtype(student_logits))
            grad.scatter_(1, head_indices, grad_head)
        return grad.to(student_logits.dtype), None, None, None, None, None, None


def grouped_kd_loss(student_logits: Tensor, teacher_logits: Tensor, head_indices: Tensor, head_groups: Tensor,
                    valid: Optional[Tensor], mass_weight: float, group_weights: Sequence[float],
                    temperature: float) -> Tuple[Tensor, Tensor, Tensor]:
    """Mean over valid pixels of the grouped KD loss for a given class partition.

    Args:
        student_logits: ``(B, C, h, w)`` or ``(N, C)``.
        teacher_logits: same shape (already checked and resized).
        head_indices: ``(B, k, h, w)`` / ``(N, k)`` distinct class indices placed in groups explicitly.
        head_groups: same shape: the group (``0 .. m-1``) of each head class. All other classes are in group m-1.
        valid: boolean mask of pixels that count, or None for all.
        mass_weight: weight of the KL between group masses.
        group_weights: ``m`` weights of the within-group KLs.
        temperature: softmax temperature T.

    Returns:
        ``(loss, kl_mass, kl_groups)``: the scalar loss, the mean group-mass KL and the mean within-group KL of each
        group ``(m,)``; the last two unweighted and detached.
    """
    weights = torch.tensor(list(group_weights), dtype=torch.float64, device=student_logits.device)
    total, kl_mass, kl_groups = _GroupedKL.apply(student_logits, teacher_logits, head_indices, head_groups, weights,
                                                 float(mass_weight), float(temperature))
    kl_groups = torch.stack([mean_over_valid(kl_group, valid) for kl_group in kl_groups.unbind(1)])
    return mean_over_valid(total, valid), mean_over_valid(kl_mass, valid), kl_groups


def check_options(k: Optional[int] = None, temperature: float = 1.0, top_p: Optional[float] = None,
                  partition: str = 'topk', num_classes: Optional[int] = None, k_name: str = 'k') -> None:
    """Raise a ``ValueError`` naming the argument for an invalid loss option."""
    if partition not in ('topk', 'topp'):
        raise ValueError(f"partition must be 'topk' or 'topp', got {partition!r}")
    if not temperature > 0:
        raise ValueError(f'temperature must be > 0, got {temperature}')
    if k is not None and k < 1:
        raise ValueError(f'{k_name} must be >= 1, got {k_name}={k}')
    if k is not None and num_classes is not None and k > num_classes:
        raise ValueError(f'{k_name}={k} is larger than the number of classes C={num_classes}')
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f'top_p must be in (0, 1], got top_p={top_p}')


def gdkd_loss(student_logits: Tensor, teacher_logits: Tensor, gt: Optional[Tensor] = None, k: int = 3,
              w0: float = 1.0, w1: float = 1.0, w2: float = 2.0, temperature: float = 1.0, ignore_index: int = 255,
              partition: str = 'topk', top_p: float = 0.9,
              k_max: Optional[int] = None) -> Tuple[Tensor, Dict[str, Tensor]]:
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

    Returns:
        ``(loss, parts)``; parts ``kl_mass``, ``kl_top``, ``kl_other`` are the unweighted KL terms averaged over
        valid pixels (detached).
    """
    num_classes = student_logits.shape[1]
    if partition == 'topk':
        check_options(k, temperature, partition=partition, num_classes=num_classes)
    else:
        check_options(k_max, temperature, top_p, partition, num_classes, k_name='k_max')
    student_logits, teacher_logits, _, valid = pixel_rows(student_logits, teacher_logits, gt, ignore_index)
    if partition == 'topk':
        head_indices = teacher_logits.topk(k, dim=1, sorted=False).indices
        head_groups = torch.zeros_like(head_indices)
    else:
        scaled_teacher = to_compute_dtype(teacher_logits) / temperature
        top_logits, head_indices = scaled_teacher.topk(k_max or num_classes, dim=1)
        top_probs = (top_logits - scaled_teacher.logsumexp(1, keepdim=True)).exp()
        # a class joins K while the mass of the classes ranked above it is still below top_p
        head_groups = ((top_probs.cumsum(1) - top_probs) >= top_p).long()
    loss, kl_mass, kl_groups = grouped_kd_loss(student_logits, teacher_logits, head_indices, head_groups, valid, w0,
                                               (w1, w2), temperature)
    return loss, dict(kl_mass=kl_mass, kl_top=kl_groups[0], kl_other=kl_groups[1])


def gdkd3_loss(student_logits: Tensor, teacher_logits: Tensor, gt: Optional[Tensor] = None, k: int = 3,
               w0: float = 1.0, w1: float = 1.0, w2: float = 2.0, temperature: float = 1.0,
               ignore_index: int = 255) -> Tuple[Tensor, Dict[str, Tensor]]:
    """GDKD with three groups: the teacher's top-1, its top-2..k, and the rest.

    Args:
        k: the top group's size (>= 2 for a non-empty middle group).
        w0: weight of the KL between the three group masses.
        w1: weight of the KL within the top-2..k group (the top-1 group's within-KL is identically 0).
        w2: weight of the KL within the rest.
        Others as in :func:`gdkd_loss`.

    Returns:
        ``(loss, parts)`` with parts ``kl_mass``, ``kl_mid``, ``kl_other``.
    """
    check_options(k, temperature, num_classes=student_logits.shape[1])
    student_logits, teacher_logits, _, valid = pixel_rows(student_logits, teacher_logits, gt, ignore_index)
    head_indices = teacher_logits.topk(k, dim=1).indices
    head_groups = torch.ones_like(head_indices)
    head_groups[:, 0] = 0
    loss, kl_mass, kl_groups = grouped_kd_loss(student_logits, teacher_logits, head_indices, head_groups, valid, w0,
                                               (0.0, w1, w2), temperature)
    return loss, dict(kl_mass=kl_mass, kl_mid=kl_groups[1], kl_other=kl_groups[2])


def dkd_loss(student_logits: Tensor, teacher_logits: Tensor, gt: Tensor, alpha: float = 1.0, beta: float = 8.0,
             temperature: float = 1.0, ignore_index: int = 255) -> Tuple[Tensor, Dict[str, Tensor]]:
    """DKD (Zhao et al., 2022): the ground-truth class against the rest.

    ``alpha`` weighs the target/non-target mass KL (TCKD), ``beta`` the KL among non-target classes (NCKD).

    Returns:
        ``(loss, parts)`` with parts ``kl_mass`` (TCKD) and ``kl_other`` (NCKD), unweighted.
    """
    if gt is None:
        raise ValueError('dkd_loss needs gt: DKD splits the classes at the ground-truth label')
    check_options(temperature=temperature)
    student_logits, teacher_logits, labels, valid = pixel_rows(student_logits, teacher_logits, gt, ignore_index)
    head_indices = labels.unsqueeze(1)
    loss, kl_mass, kl_groups = grouped_kd_loss(student_logits, teacher_logits, head_indices,
                                               torch.zeros_like(head_indices), valid, alpha, (0.0, beta),
                                               temperature)
    return loss, dict(kl_mass=kl_mass, kl_other=kl_groups[1])


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, gt: Optional[Tensor] = None, temperature: float = 1.0,
            ignore_index: int = 255) -> Tuple[Tensor, Dict[str, Tensor]]:
    """Classic KD (Hinton et al.): per-pixel ``T²·KL(softmax(z_t/T) ‖ softmax(z_s/T))``.

    Returns:
        ``(loss, parts)`` with part ``kl``.
    """
    check_options(temperature=temperature)
    student_logits, teacher_logits, _, valid = pixel_rows(student_logits, teacher_logits, gt, ignore_index)
    no_head = teacher_logits.new_zeros((teacher_logits.shape[0], 0), dtype=torch.long)
    loss, _, kl_groups = grouped_kd_loss(student_logits, teacher_logits, no_head, no_head, valid, 0.0, (1.0,),
                                         temperature)
    return loss, dict(kl=kl_groups[0])
