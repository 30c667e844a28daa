"""The PyTorch implementation of the grouped KD loss: one row per pixel, the closed-form student gradient
recomputed in backward from the inputs and a few per-pixel statistics.

It runs where neither kernel can, and it is the reference both kernels are tested against (see
:mod:`gdkd_seg.losses.kernels` for the definition and the numerics).
"""
import math
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..inputs import to_compute_dtype

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


def clamp_log_masses(log_mass: Tensor, eps: float) -> Tuple[Tensor, Tensor]:
    """The authors' mass clamp in log space: each group mass ``b`` of ``(N, G)`` log-masses set to
    ``clamp(b, eps, 1 − eps)``.

    A mass is above ``1 − eps`` when the other groups' masses together are below ``eps``; that complement is read
    from their own log-masses, since a mass of ``1 − 1e-8`` rounds to 1 in float32 and its log to 0.

    Returns:
        ``(clamped, inside)``: the clamped log-masses, and where a mass was left as it is (its gradient flows).
    """
    num_groups = log_mass.shape[1]
    others = log_mass.unsqueeze(1).expand(-1, num_groups, -1).masked_fill(
        torch.eye(num_groups, dtype=torch.bool, device=log_mass.device), NEG_INF)
    below, above = log_mass < math.log(eps), others.logsumexp(2) < math.log(eps)
    clamped = torch.where(below, math.log(eps), torch.where(above, math.log1p(-eps), log_mass))
    return clamped, ~(below | above)


class _GroupedKL(torch.autograd.Function):
    """Per-pixel ``T²·[w_mass·KL(b_t‖b_s) + Σ_g w_g·KL(p_t^g‖p_s^g)]`` and its closed-form student gradient."""

    @staticmethod
    def forward(ctx, student_logits: Tensor, teacher_logits: Tensor, head_indices: Tensor, head_groups: Tensor,
                group_weights: Tensor, mass_weight: float, temperature: float,
                mass_clamp: Optional[float]) -> Tuple[Tensor, Tensor, Tensor]:
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

            log_mass_student = lse_student - lse_student.logsumexp(1, keepdim=True)
            log_mass_teacher = lse_teacher - lse_teacher.logsumexp(1, keepdim=True)
            if mass_clamp is None:
                nonempty = lse_teacher > NEG_INF
                kl_mass = torch.where(nonempty, log_mass_teacher.exp() * (log_mass_teacher - log_mass_student),
                                      0.0).sum(1)
            else:  # an empty group's masses clamp to eps on both sides: its term is 0
                log_mass_teacher, _ = clamp_log_masses(log_mass_teacher, mass_clamp)
                kl_mass = (log_mass_teacher.exp()
                           * (log_mass_teacher - clamp_log_masses(log_mass_student, mass_clamp)[0])).sum(1)
            total = temperature ** 2 * (mass_weight * kl_mass
                                        + (_group_shape(group_weights, kl_groups) * kl_groups).sum(1))

        ctx.save_for_backward(student_logits, teacher_logits, head_indices, head_groups, group_weights,
                              student_head, teacher_head, lse_student, lse_teacher, tail_max_student,
                              tail_max_teacher)
        ctx.mass_weight, ctx.temperature, ctx.mass_clamp = mass_weight, temperature, mass_clamp
        ctx.mark_non_differentiable(kl_mass, kl_groups)
        return total, kl_mass, kl_groups

    @staticmethod
    def backward(ctx, grad_total: Tensor, *unused_part_grads):
        (student_logits, teacher_logits, head_indices, head_groups, group_weights, student_head, teacher_head,
         lse_student, lse_teacher, tail_max_student, tail_max_teacher) = ctx.saved_tensors
        temperature = ctx.temperature
        with torch.autocast(student_logits.device.type, enabled=False):
            mass_gap = mass_gradient(lse_student - lse_student.logsumexp(1, keepdim=True),
                                     lse_teacher - lse_teacher.logsumexp(1, keepdim=True), ctx.mass_clamp)
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
        return grad.to(student_logits.dtype), None, None, None, None, None, None, None


def mass_gradient(log_mass_student: Tensor, log_mass_teacher: Tensor, mass_clamp: Optional[float]) -> Tensor:
    """The per-group factor ``gap(g)`` of the mass KL's gradient, ``∂KL_mass / ∂(z_s(i)/T) = q_s(i)·gap(g)`` for a
    class i of group g, from ``(N, G)`` log-masses: ``b_s(g) − b_t(g)`` exactly; with the clamp
    ``b_s(g)·S − u(g)·b̃_t(g)``, where ``b̃`` are clamped masses, ``u(g)`` says whether the student's mass of g was
    inside the clamp and ``S = Σ_g u(g)·b̃_t(g)``: a mass clamped on the student's side passes no gradient (with two
    groups both clamp together, and the pixel's mass term passes none)."""
    if mass_clamp is None:
        return log_mass_student.exp() - log_mass_teacher.exp()
    inside = clamp_log_masses(log_mass_student, mass_clamp)[1]
    teacher = torch.where(inside, clamp_log_masses(log_mass_teacher, mass_clamp)[0].exp(), 0.0)
    return log_mass_student.exp() * teacher.sum(1, keepdim=True) - teacher


def _rows(tensor: Tensor) -> Tensor:
    """``(B, C, *spatial)`` as one row per pixel ``(P, C)``."""
    return tensor.movedim(1, -1).reshape(-1, tensor.shape[1]) if tensor.dim() > 2 else tensor


def grouped_kl_per_pixel(student_logits: Tensor, teacher_logits: Tensor, partition: dict,
                         group_weights: Sequence[float], mass_weight: float, temperature: float,
                         mass_clamp: Optional[float] = None) -> Tuple[Tensor, Tensor, Tensor]:
    """Per-pixel loss, mass KL and within-group KLs of ``(B, C, *spatial)`` or ``(N, C)`` logits.

    Args: as :func:`gdkd_seg.losses.kernels.grouped_kd_loss`, the partition as a dict of ``head_indices`` and
        ``head_groups``, or of ``top_k`` and ``rank_groups``.

    Returns:
        ``(total, kl_mass, kl_groups)``: ``(B, *spatial)``, ``(B, *spatial)`` and ``(m, B, *spatial)`` (``(N,)``
        and ``(m, N)`` for rows); only ``total`` is differentiable.
    """
    pixel_shape = (student_logits.shape[0], *student_logits.shape[2:])
    teacher_rows = _rows(teacher_logits)
    if partition.get('head_indices') is None:
        rank_groups = partition['rank_groups']
        head_indices = teacher_rows.topk(partition['top_k'], dim=1, sorted=len(set(rank_groups)) > 1)[1]
        head_groups = torch.tensor(rank_groups, dtype=torch.long, device=teacher_rows.device).expand_as(head_indices)
    else:
        head_indices, head_groups = _rows(partition['head_indices']), _rows(partition['head_groups'])
    weights = torch.tensor(list(group_weights), dtype=torch.float64, device=student_logits.device)
    total, kl_mass, kl_groups = _GroupedKL.apply(_rows(student_logits), teacher_rows, head_indices, head_groups,
                                                 weights, float(mass_weight), float(temperature), mass_clamp)
    return total.view(pixel_shape), kl_mass.view(pixel_shape), kl_groups.t().reshape(-1, *pixel_shape)
