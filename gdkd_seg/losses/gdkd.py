"""The GDKD loss family as pure functions: GDKD, its three-group variant, DKD and KD.

All four are one computation on a per-pixel partition of the classes into groups:

    L = T² · [ w_mass · KL(b_t ‖ b_s) + Σ_g w_g · KL(p_t^g ‖ p_s^g) ]

with p = softmax(z / T), b the probability mass of each group and p^g the distribution within group g. Only the
partition differs: GDKD splits off the teacher's top-k (or top-p) classes, GDKD3 splits those again into the
top-1 and the rest of the top-k, DKD splits off the ground-truth class, KD keeps a single group.

A partition is given by a few "head" classes per pixel -- the teacher's top-k, each in the group of its rank, or
explicit ``head_indices`` with the group of each in ``head_groups`` -- and every other class, the tail, belongs to
the last group. Three implementations compute it, chosen in :func:`grouped_kd_loss` and tested against the same
float64 reference:

* on GPUs, a fused Triton kernel (``triton_kernel.py``): teacher top-k, group log-sum-exps, KLs, per-program sums
  and the student gradient in one launch, straight from the ``(B, C, H, W)`` layout;
* on CPU, a fused C kernel (``grouped_kl.c``, built on first use by ``cpu_kernel.py``): 64 pixels at a time
  straight from the ``(B, C, H, W)`` layout, the student gradient written in the same pass;
* elsewhere (no Triton on a GPU, no C compiler on a CPU, more groups than the kernels take), ``_GroupedKL``
  below, in PyTorch ops on one row per pixel: the reference the kernels are tested against.

Numerics, the same in both:

* group log-masses are log-sum-exps: over the few head logits directly, and over the tail as
  ``max + log Σ exp(z − max)`` with the tail's own maximum, so a confident teacher (logits of 30+, masses of 1e-20
  outside its top classes) and fp16/bf16 inputs stay finite. No probabilities are summed and logged;
* within-group KLs ``Σ_{i∈g} q_t(i)·(log q_t(i) − log q_s(i))`` form each log-probability ``z_i/T − lse_g(z/T)``
  before subtracting, so a large common offset between teacher and student logits cancels exactly;
* the student gradient has a closed form per class i in group g,
  ``∂L/∂s_i = T² · [w_mass · q_s(i)·(b_s(g) − b_t(g)) + w_g · (q_s(i) − q_t(i))]``, recomputed in backward from
  the inputs and a few per-pixel statistics (PyTorch), or written during forward (kernel: the gradient is
  backward's output anyway, so keeping it costs no more memory than recomputing it).
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor

from . import cpu_kernel, triton_kernel
from .inputs import check_inputs, mean_over_valid, to_compute_dtype
from .options import check_options

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


class _FusedGroupedKL(torch.autograd.Function):
    """The CPU kernel: forward returns the per-pixel loss and keeps its student gradient for backward."""

    @staticmethod
    def forward(ctx, student_logits: Tensor, teacher_logits: Tensor, valid: Optional[Tensor], partition: dict,
                group_weights: Sequence[float], mass_weight: float,
                temperature: float) -> Tuple[Tensor, Tensor, Tensor]:
        total, kl_mass, kl_groups, grad = cpu_kernel.grouped_kl(
            to_compute_dtype(student_logits), teacher_logits, group_weights, mass_weight, temperature, valid=valid,
            with_grad=ctx.needs_input_grad[0], **partition)
        ctx.save_for_backward(grad)
        ctx.student_dtype = student_logits.dtype
        ctx.mark_non_differentiable(kl_mass, kl_groups)
        return total, kl_mass, kl_groups

    @staticmethod
    def backward(ctx, grad_total: Tensor, *unused_part_grads):
        grad, = ctx.saved_tensors
        grad = grad * grad_total.unsqueeze(1).to(grad.dtype)
        return grad.to(ctx.student_dtype), None, None, None, None, None, None


def _rows(tensor: Tensor) -> Tensor:
    """``(B, C, *spatial)`` as one row per pixel ``(P, C)``."""
    return tensor.movedim(1, -1).reshape(-1, tensor.shape[1]) if tensor.dim() > 2 else tensor


def _grouped_kl_torch(student_logits: Tensor, teacher_logits: Tensor, partition: dict,
                      group_weights: Sequence[float], mass_weight: float,
                      temperature: float) -> Tuple[Tensor, Tensor, Tensor]:
    """``_GroupedKL`` on pixel rows, with the outputs shaped as the kernel's."""
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
                                                 weights, float(mass_weight), float(temperature))
    return total.view(pixel_shape), kl_mass.view(pixel_shape), kl_groups.t().reshape(-1, *pixel_shape)


def grouped_kd_loss(student_logits: Tensor, teacher_logits: Tensor, valid: Optional[Tensor], mass_weight: float,
                    group_weights: Sequence[float], temperature: float, head_indices: Optional[Tensor] = None,
                    head_groups: Optional[Tensor] = None, top_k: int = 0,
                    rank_groups: Sequence[int] = ()) -> Tuple[Tensor, Tensor, Tensor]:
    """Mean over valid pixels of the grouped KD loss for a given class partition.

    Args:
        student_logits: ``(B, C, h, w)`` or ``(N, C)``.
        teacher_logits: same shape (already checked, resized and detached).
        valid: boolean mask ``(B, h, w)`` / ``(N,)`` of pixels that count, or None for all.
        mass_weight: weight of the KL between group masses.
        group_weights: ``m`` weights of the within-group KLs.
        temperature: softmax temperature T.
        head_indices: ``(B, k, h, w)`` / ``(N, k)`` distinct class indices placed in groups explicitly, with
        head_groups: the group (``0 .. m-1``) of each; or None, and then
        top_k, rank_groups: the head is the teacher's ``top_k`` classes, its j-th largest in group ``rank_groups[j]``.
            All other classes are in group m-1.

    Returns:
        ``(loss, kl_mass, kl_groups)``: the scalar loss, the mean group-mass KL and the mean within-group KL of each
        group ``(m,)``; the last two unweighted and detached.
    """
    if head_indices is None:
        partition = dict(top_k=top_k, rank_groups=tuple(rank_groups))
    else:
        partition = dict(head_indices=head_indices, head_groups=head_groups.long())
    if triton_kernel.supports(student_logits, len(group_weights)):
        means = triton_kernel.TritonGroupedKL.apply(student_logits, teacher_logits, valid, partition,
                                                    tuple(group_weights), float(mass_weight), float(temperature))
        return means[0], means[1].detach(), means[2:].detach()
    if cpu_kernel.supports(student_logits):
        total, kl_mass, kl_groups = _FusedGroupedKL.apply(student_logits, teacher_logits, valid, partition,
                                                          tuple(group_weights), float(mass_weight),
                                                          float(temperature))
    else:
        total, kl_mass, kl_groups = _grouped_kl_torch(student_logits, teacher_logits, partition, group_weights,
                                                      mass_weight, temperature)
    kl_groups = torch.stack([mean_over_valid(kl_group, valid) for kl_group in kl_groups])
    return mean_over_valid(total, valid), mean_over_valid(kl_mass, valid), kl_groups


def gdkd_loss(student_logits: Tensor, teacher_logits: Tensor, gt: Optional[Tensor] = None, k: int = 3,
              w0: float = 1.0, w1: float = 1.0, w2: float = 2.0, temperature: float = 1.0, ignore_index: int = 255,
              partition: str = 'topk', top_p: float = 0.9, k_max: Optional[int] = None,
              logit_standardize: bool = False, ignore_incorrect: bool = False,
              entropy_weight: float = 0.0) -> Tuple[Tensor, Dict[str, Tensor]]:
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
            Ours is the exact entropy from log-softmax; theirs clamps probabilities to [eps, 1 − eps] first (a
            difference below C × 2e-6 in float32), and their last version adds the term only when between 1 and
            1000 pixels of the batch are left out (it sits in their masked branch alone), their earlier one
            always, as here. 0 (the default) leaves it out.

    Returns:
        ``(loss, parts)``; parts ``kl_mass``, ``kl_top``, ``kl_other`` are the unweighted KL terms averaged over
        valid pixels, and ``entropy`` (H above) when ``entropy_weight > 0`` (all detached).
    """
    num_classes = student_logits.shape[1]
    check_options(num_classes, w0=w0, w1=w1, w2=w2, temperature=temperature, ignore_index=ignore_index,
                  partition=partition, logit_standardize=logit_standardize, ignore_incorrect=ignore_incorrect,
                  entropy_weight=entropy_weight,
                  **(dict(k=k) if partition == 'topk' else dict(top_p=top_p, k_max=k_max)))
    if ignore_incorrect and gt is None:
        raise ValueError('gdkd_loss with ignore_incorrect=True needs gt: it keeps the pixels where the teacher\'s '
                         'argmax equals the label')
    student_logits, teacher_logits, labels, valid = check_inputs(student_logits, teacher_logits, gt, ignore_index,
                                                                 logit_standardize)
    if ignore_incorrect:  # standardization keeps each pixel's argmax, so either logits give the same mask
        valid = valid & (teacher_logits.argmax(1) == labels)
    if partition == 'topk':
        partition_args = dict(top_k=k, rank_groups=[0] * k)
    else:
        scaled_teacher = to_compute_dtype(teacher_logits) / temperature
        top_logits, head_indices = scaled_teacher.topk(k_max or num_classes, dim=1)
        top_probs = (top_logits - scaled_teacher.logsumexp(1, keepdim=True)).exp()
        # a class joins K while the mass of the classes ranked above it is still below top_p
        partition_args = dict(head_indices=head_indices, head_groups=((top_probs.cumsum(1) - top_probs) >= top_p))
    loss, kl_mass, kl_groups = grouped_kd_loss(student_logits, teacher_logits, valid, w0, (w1, w2), temperature,
                                               **partition_args)
    parts = dict(kl_mass=kl_mass, kl_top=kl_groups[0], kl_other=kl_groups[1])
    if entropy_weight > 0:
        entropy = _mean_entropy(student_logits, temperature)
        loss = loss - entropy_weight * entropy
        parts['entropy'] = entropy.detach()
    return loss, parts


def _mean_entropy(logits: Tensor, temperature: float) -> Tensor:
    """Mean over every pixel (row) of the entropy of ``softmax(z/T)``, ``−Σ p·log p`` with ``log p`` from
    log-softmax: finite for any finite logits (a probability that underflows to 0 meets a finite log-probability),
    in the compute dtype, outside autocast."""
    with torch.autocast(logits.device.type, enabled=False):
        log_probs = (to_compute_dtype(logits) / temperature).log_softmax(1)
        return -(log_probs.exp() * log_probs).sum(1).mean()


def gdkd_pixel_terms(student_logits: Tensor, teacher_logits: Tensor, k: int = 3,
                     temperature: float = 1.0) -> Dict[str, Tensor]:
    """GDKD's three unweighted terms per pixel (``partition='topk'``), for pictures of where a student disagrees.

    The same computation as :func:`gdkd_loss` (its PyTorch implementation, on any device), before the mean: the
    means of these maps over valid pixels are its parts of the same names.

    Args:
        student_logits, teacher_logits: ``(B, C, H, W)`` at the same size.
        k: the teacher's top group size.
        temperature: softmax temperature T.

    Returns:
        ``kl_mass`` (KL between the top/rest masses), ``kl_top`` (within the teacher's top-k), ``kl_other``
        (within the rest), each ``(B, H, W)``, in the logits' compute dtype.
    """
    check_options(num_classes=student_logits.shape[1], k=k, temperature=temperature)
    _, kl_mass, kl_groups = _grouped_kl_torch(student_logits, teacher_logits, dict(top_k=k, rank_groups=[0] * k),
                                              (1.0, 1.0), 1.0, temperature)
    return dict(kl_mass=kl_mass, kl_top=kl_groups[0], kl_other=kl_groups[1])


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
    check_options(student_logits.shape[1], k=k, w0=w0, w1=w1, w2=w2, temperature=temperature,
                  ignore_index=ignore_index)
    student_logits, teacher_logits, _, valid = check_inputs(student_logits, teacher_logits, gt, ignore_index)
    loss, kl_mass, kl_groups = grouped_kd_loss(student_logits, teacher_logits, valid, w0, (0.0, w1, w2), temperature,
                                               top_k=k, rank_groups=[0] + [1] * (k - 1))
    return loss, dict(kl_mass=kl_mass, kl_mid=kl_groups[1], kl_other=kl_groups[2])


def dkd_loss(student_logits: Tensor, teacher_logits: Tensor, gt: Tensor, alpha: float = 1.0, beta: float = 8.0,
             temperature: float = 1.0, ignore_index: int = 255,
             logit_standardize: bool = False) -> Tuple[Tensor, Dict[str, Tensor]]:
    """DKD (Zhao et al., 2022): the ground-truth class against the rest.

    ``alpha`` weighs the target/non-target mass KL (TCKD), ``beta`` the KL among non-target classes (NCKD);
    ``logit_standardize`` as in :func:`gdkd_loss`.

    Returns:
        ``(loss, parts)`` with parts ``kl_mass`` (TCKD) and ``kl_other`` (NCKD), unweighted.
    """
    if gt is None:
        raise ValueError('dkd_loss needs gt: DKD splits the classes at the ground-truth label')
    check_options(alpha=alpha, beta=beta, temperature=temperature, ignore_index=ignore_index,
                  logit_standardize=logit_standardize)
    student_logits, teacher_logits, labels, valid = check_inputs(student_logits, teacher_logits, gt, ignore_index,
                                                                 logit_standardize)
    head_indices = labels.unsqueeze(1)
    loss, kl_mass, kl_groups = grouped_kd_loss(student_logits, teacher_logits, valid, alpha, (0.0, beta), temperature,
                                               head_indices=head_indices, head_groups=torch.zeros_like(head_indices))
    return loss, dict(kl_mass=kl_mass, kl_other=kl_groups[1])


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, gt: Optional[Tensor] = None, temperature: float = 1.0,
            ignore_index: int = 255, logit_standardize: bool = False) -> Tuple[Tensor, Dict[str, Tensor]]:
    """Classic KD (Hinton et al.): per-pixel ``T²·KL(softmax(z_t/T) ‖ softmax(z_s/T))``; ``logit_standardize`` as
    in :func:`gdkd_loss`.

    Returns:
        ``(loss, parts)`` with part ``kl``.
    """
    check_options(temperature=temperature, ignore_index=ignore_index, logit_standardize=logit_standardize)
    student_logits, teacher_logits, _, valid = check_inputs(student_logits, teacher_logits, gt, ignore_index,
                                                            logit_standardize)
    loss, _, kl_groups = grouped_kd_loss(student_logits, teacher_logits, valid, 0.0, (1.0,), temperature)
    return loss, dict(kl=kl_groups[0])
