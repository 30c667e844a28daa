"""The grouped KD loss: one definition, three implementations behind one dispatch (:func:`grouped_kd_loss`).

GDKD, its three-group variant, DKD and KD are one computation on a per-pixel partition of the classes into groups:

    L = T² · [ w_mass · KL(b_t ‖ b_s) + Σ_g w_g · KL(p_t^g ‖ p_s^g) ]

with p = softmax(z / T), b the probability mass of each group and p^g the distribution within group g. A partition
is given by a few "head" classes per pixel -- the teacher's top-k, each in the group of its rank, or explicit
``head_indices`` with the group of each in ``head_groups`` -- and every other class, the tail, belongs to the last
group. The implementations, tested against the same float64 reference (``tests/losses``):

* :mod:`.gpu`: Triton kernels on CUDA tensors (``grouped_kl_triton.py``): a lane per pixel looping over its classes
  (teacher top-k, group log-sum-exps, KLs, the student gradient, labels read at their own size), per-program sums
  added by a second kernel, three launches for a forward and backward;
* :mod:`.cpu`: a fused C kernel on CPU tensors (``grouped_kl.c``, built on first use): 64 pixels at a time straight
  from the ``(B, C, H, W)`` layout, the student gradient written in the same pass;
* :mod:`.pytorch`: PyTorch ops on one row per pixel, where neither kernel runs (a GPU without Triton, a CPU without
  a C compiler, more groups or head classes than the kernels take): the reference the kernels are tested against.

Numerics, the same in all three:

* group log-masses are log-sum-exps: over the few head logits directly, and over the tail as
  ``max + log Σ exp(z − max)`` with the tail's own maximum, so a confident teacher (logits of 30+, masses of 1e-20
  outside its top classes) and fp16/bf16 inputs stay finite. No probabilities are summed and logged;
* within-group KLs ``Σ_{i∈g} q_t(i)·(log q_t(i) − log q_s(i))`` form each log-probability ``z_i/T − lse_g(z/T)``
  before subtracting, so a large common offset between teacher and student logits cancels exactly;
* the authors' mass clamp, where asked for (``mass_clamp=eps``), is applied to the log-masses: a mass below eps is
  read from its own log, a mass above 1 − eps from the log-sum-exp of the other groups' (its complement), so the
  decision does not depend on how 1 − 1e-8 rounds;
* the student gradient has a closed form per class i in group g,
  ``∂L/∂s_i = T² · [w_mass · q_s(i)·(b_s(g) − b_t(g)) + w_g · (q_s(i) − q_t(i))]`` (with the clamp,
  ``b_s(g) − b_t(g)`` becomes ``b_s(g)·S − u(g)·b̃_t(g)``: see :func:`.pytorch.mass_gradient`), recomputed in
  backward from the inputs and a few per-pixel statistics (PyTorch), or written during forward (kernels: the
  gradient is backward's output anyway, so keeping it costs no more memory than recomputing it).
"""
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ..inputs import LabelMap, mean_over_valid, valid_mask
from . import cpu, gpu, pytorch


def grouped_kd_loss(student_logits: Tensor, teacher_logits: Tensor, valid: Union[Tensor, LabelMap, None],
                    mass_weight: float, group_weights: Sequence[float], temperature: float,
                    head_indices: Optional[Tensor] = None, head_groups: Optional[Tensor] = None, top_k: int = 0,
                    rank_groups: Sequence[int] = (), head_from_labels: bool = False,
                    mass_clamp: Optional[float] = None) -> Tuple[Tensor, Tensor, Tensor]:
    """Mean over valid pixels of the grouped KD loss for a given class partition, by the first implementation that
    takes the inputs: the GPU kernel, the CPU kernel, else PyTorch.

    Args:
        student_logits: ``(B, C, h, w)`` or ``(N, C)``.
        teacher_logits: same shape (already checked, resized and detached).
        valid: the pixels that count: a boolean mask ``(B, h, w)`` / ``(N,)``, the labels (a
            :class:`~gdkd_seg.losses.inputs.LabelMap`: pixels not labelled ``ignore_index``), or None for all.
        mass_weight: weight of the KL between group masses.
        group_weights: ``m`` weights of the within-group KLs.
        temperature: softmax temperature T.
        head_indices: ``(B, k, h, w)`` / ``(N, k)`` distinct class indices placed in groups explicitly, with
        head_groups: the group (``0 .. m-1``) of each; or None, and then
        top_k, rank_groups: the head is the teacher's ``top_k`` classes, its j-th largest in group ``rank_groups[j]``;
        head_from_labels: or the head is each pixel's label, in group 0 (``valid`` the labels).
            All other classes are in group m-1.
        mass_clamp: None for the exact mass KL, or eps: the group masses of teacher and student clamped to
            ``[eps, 1 − eps]`` before their logs, with no gradient through a clamped student mass (the authors'
            code, see :func:`.pytorch.clamp_log_masses`).

    Returns:
        ``(loss, kl_mass, kl_groups)``: the scalar loss, the mean group-mass KL and the mean within-group KL of each
        group ``(m,)``; the last two unweighted and detached.
    """
    if head_from_labels:
        partition = dict(head_from_labels=True)
        head_size = 1
    elif head_indices is None:
        partition = dict(top_k=top_k, rank_groups=tuple(rank_groups))
        head_size = top_k
    else:
        partition = dict(head_indices=head_indices, head_groups=head_groups.long())
        head_size = head_indices.shape[1]
    options = (tuple(group_weights), float(mass_weight), float(temperature), mass_clamp)
    if gpu.supports(student_logits, len(group_weights), head_size):
        loss, parts = gpu.TritonGroupedKL.apply(student_logits, teacher_logits, valid, partition, *options)
        return loss, parts[0], parts[1:]
    if head_from_labels:
        head_indices = valid.labels.unsqueeze(1)
        partition = dict(head_indices=head_indices, head_groups=torch.zeros_like(head_indices))
    valid = valid_mask(valid)
    if cpu.supports(student_logits):
        total, kl_mass, kl_groups = cpu.CGroupedKL.apply(student_logits, teacher_logits, valid, partition, *options)
    else:
        total, kl_mass, kl_groups = pytorch.grouped_kl_per_pixel(student_logits, teacher_logits, partition, *options)
    kl_groups = torch.stack([mean_over_valid(kl_group, valid) for kl_group in kl_groups])
    return mean_over_valid(total, valid), mean_over_valid(kl_mass, valid), kl_groups


__all__ = ['cpu', 'gpu', 'grouped_kd_loss', 'pytorch']
