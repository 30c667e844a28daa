"""The GPU implementation of the grouped KD loss: Triton kernels (``grouped_kl_triton.py``), launched from here.

A forward and backward of a loss with labels is three launches: the loss kernel (labels resized and the valid mask
read in it, the teacher's top-k, group log-sum-exps, KLs, the student gradient for a unit per-pixel loss and each
program's sums), the means kernel (the programs' sums added in a fixed order and divided by the pixel count), and
in backward one scaling of the gradient by the loss's gradient over the count (in the student's dtype). The loss is
the definition of :mod:`gdkd_seg.losses.kernels` with its numerics (group log-sum-exps with each group's own maximum,
shifted logits formed before they are subtracted).

Decisions:

* lanes: one pixel per lane, a loop over classes (``grouped_kl_triton.py``): the loads of a class are coalesced
  rows, registers do not grow with the class count, and the work per logit is a few instructions, so the kernel is
  bound by memory bandwidth (``python tools/analysis_tools/benchmark_losses.py --sass`` reads it from the compile);
* layout: logits are read where they lie, as ``(image, class, pixel)`` with any strides (``(B, C, H, W)``
  contiguous or channels_last, ``(N, C)`` rows as one image of N pixels), so nothing is copied or transposed;
* labels: read at their own size, each pixel's where ``F.interpolate(mode='nearest')`` reads it, so neither the
  resized labels nor the valid mask is ever made;
* precision: fp16/bf16/float32 logits are computed in float32, float64 in float64; the gradient is kept in the
  compute dtype and written in the student's dtype by backward (a new tensor: a retained graph may run backward
  again);
* limits: at most ``MAX_GROUPS`` (4) groups and ``MAX_HEAD`` (16) head classes a pixel (top-k with k <= 16,
  top-p with ``k_max`` <= 16, DKD's label), held in registers (the sm_90 compile at 16 uses no local memory,
  tested); beyond that the PyTorch implementation runs;
* determinism: no atomics; per-program sums added in a fixed order, so a rerun gives the same bits;
* without a GPU: :func:`interpreted_on_cpu` runs the same kernels on CPU tensors through Triton's interpreter
  (``TRITON_INTERPRET=1``, set by ``tests/conftest.py``), which is how CI tests them;
* ``GDKD_TRITON_KERNEL=0`` (or :func:`switched_off`) turns the kernels off and the PyTorch implementation runs.
"""
import math
import os
import warnings
from contextlib import nullcontext
from functools import lru_cache
from typing import Optional, Sequence, Tuple, Union

import numpy
import torch
from torch import Tensor

from ..inputs import LabelMap
from .switch import Switch

MAX_GROUPS = 4
MAX_HEAD = 16
# pixels a program owns and its warps on GPUs (docs/performance.md); the interpreter pays per operation, not per
# element, so it takes up to ``interpreter_pixels`` a program
LAUNCH = dict(pixels=256, num_warps=4, interpreter_pixels=4096)
SCALE_BLOCK = 1024  # elements a program of the backward's scaling

_off = Switch()
_on_cpu = Switch()
# ``with switched_off():`` runs the losses without this kernel (benchmarks and tests compare implementations)
switched_off = _off.held


def interpreted_on_cpu():
    """Inside this ``with`` block the losses run this kernel on CPU tensors too, through Triton's interpreter (slow:
    tests).

    Raises:
        RuntimeError: when the process did not start with ``TRITON_INTERPRET=1`` (or Triton is missing).
    """
    if not (interpreter_on() and available()):
        raise RuntimeError('the Triton kernel runs on CPU tensors only through Triton\'s interpreter: set '
                           'TRITON_INTERPRET=1 in the environment before triton is imported, and install triton')
    return _on_cpu.held()


@lru_cache(maxsize=None)
def available() -> bool:
    """Whether Triton imports (it comes with PyTorch's CUDA builds) and the kernel is not switched off by env."""
    if os.environ.get('GDKD_TRITON_KERNEL', '1') == '0':
        return False
    try:
        import triton  # noqa: F401, PLC0415  (optional: PyTorch's CUDA builds bring it)
    except ImportError:
        if torch.cuda.is_available():
            warnings.warn('gdkd_seg: triton is not installed, so the GDKD losses run their PyTorch implementation on '
                          "the GPU (same values, slower); install the triton your torch build was made with (PyTorch's "
                          'CUDA wheels bring it)', RuntimeWarning, stacklevel=2)
        return False
    return True


def supports(logits: Tensor, num_groups: int, head_size: int = 0) -> bool:
    """Whether the kernel takes these logits: CUDA tensors (CPU ones inside :func:`interpreted_on_cpu`) of a
    floating dtype, at most ``MAX_GROUPS`` groups and ``MAX_HEAD`` head classes, Triton available and not switched
    off."""
    on_device = logits.is_cuda or (_on_cpu.on and logits.device.type == 'cpu')
    return (on_device and not _off.on and logits.is_floating_point() and num_groups <= MAX_GROUPS
            and head_size <= MAX_HEAD and available())


def kernels():
    """The Triton module of the kernels (interpreted when the process started with ``TRITON_INTERPRET=1``)."""
    from . import grouped_kl_triton  # noqa: PLC0415  (optional: imports triton)
    return grouped_kl_triton


def launch_kernel(kernel, grid: Tuple[int, ...], *args, **kwargs) -> None:
    """Every launch of these kernels goes through here (the launch counter of the benchmarks wraps it); on CPU the
    interpreter computes masked-off lanes too (log 0 and the like) in numpy: its warnings are quieted."""
    on_cpu = isinstance(args[0], Tensor) and args[0].device.type == 'cpu'
    with numpy.errstate(all='ignore') if on_cpu else nullcontext():
        kernel[grid](*args, **kwargs)


def interpreter_on() -> bool:
    """Whether Triton runs kernels through its interpreter: ``TRITON_INTERPRET=1`` before triton is imported (it
    decides when its own library functions are decorated, so the mode is per process)."""
    return os.environ.get('TRITON_INTERPRET', '0') == '1'


@lru_cache(maxsize=256)
def _device_constants(values: tuple, dtype: torch.dtype, device: torch.device) -> Tensor:
    """The loss's options as a tensor on ``device``, made once: copying them from the host at every call would make
    the CPU wait for the GPU's queue (a synchronous copy) in every training step. Never written to."""
    return torch.tensor(values, dtype=dtype, device=device)


def _as_planes(tensor: Tensor) -> Tensor:
    """``(B, C, *spatial)`` as ``(B, C, pixels)`` (a view where the strides allow), ``(N, C)`` as ``(1, C, N)``."""
    if tensor.dim() == 2:
        return tensor.t().unsqueeze(0)
    return tensor.reshape(tensor.shape[0], tensor.shape[1], -1)


def _next_power_of_2(value: int) -> int:
    return 1 << max(value - 1, 0).bit_length()


def _label_arguments(labels: LabelMap, logits: Tensor) -> tuple:
    """The labels' tensor, the logits' width, the labels' height and width, the nearest resize's scales (float32,
    as PyTorch computes them), ``ignore_index`` and the labels' strides ``(image, row, column)``."""
    gt = labels.gt
    if gt.dim() == 1:  # (N,) rows: one image of N pixels, one row
        return gt, gt.shape[0], 1, gt.shape[0], 1.0, 1.0, labels.ignore_index, 0, 0, gt.stride(0)
    height, width = logits.shape[2:]
    row_scale = float(numpy.float32(gt.shape[1]) / numpy.float32(height))
    col_scale = float(numpy.float32(gt.shape[2]) / numpy.float32(width))
    return (gt, width, gt.shape[1], gt.shape[2], row_scale, col_scale, labels.ignore_index, *gt.stride())


def kernel_arguments(student_logits: Tensor, teacher_logits: Tensor, valid: Union[Tensor, LabelMap, None],
                     group_weights: Sequence[float], mass_weight: float, temperature: float,
                     head_indices: Optional[Tensor] = None, head_groups: Optional[Tensor] = None, top_k: int = 0,
                     rank_groups: Sequence[int] = (), head_from_labels: bool = False, with_grad: bool = True,
                     mass_clamp: Optional[float] = None,
                     pixels: Optional[int] = None) -> Tuple[Tuple[int, int], tuple, dict, Tensor, Optional[Tensor]]:
    """The loss kernel's grid, arguments and compile-time constants for these inputs (the launch and the SASS
    report of the benchmark both use them).

    Args: as :func:`launch`, and
        pixels: the most pixels a program owns; default ``LAUNCH``'s for the tensors' device (the interpreter's on
            CPU: CPU tensors that stand for CUDA ones in a compile pass ``LAUNCH['pixels']``).

    Returns:
        ``(grid, args, constants, partials, grad)``: ``partials`` the programs' sums it writes, ``grad`` the gradient
        buffer in the compute dtype shaped like the student's planes (None without ``with_grad``).
    """
    num_groups = len(group_weights)
    device = student_logits.device
    compute = torch.float64 if torch.float64 in (student_logits.dtype, teacher_logits.dtype) else torch.float32
    student, teacher = _as_planes(student_logits), _as_planes(teacher_logits)
    num_images, num_classes, num_pixels = student.shape
    if pixels is None:
        pixels = LAUNCH['interpreter_pixels'] if device.type == 'cpu' else LAUNCH['pixels']
    block_p = min(pixels, max(_next_power_of_2(num_pixels), 16))
    num_blocks = -(-num_pixels // block_p)
    partials = torch.empty((num_images * num_blocks, num_groups + 3), dtype=compute, device=device)
    grad = torch.empty_like(student, dtype=compute) if with_grad else None
    placeholder = partials  # for pointers the kernel does not read (the constants say so)
    no_strides = (0, 0, 0)

    if head_from_labels:
        head, slots, heads, groups, head_strides = 2, 1, placeholder, placeholder, no_strides
    elif head_indices is not None:
        heads, groups = _as_planes(head_indices), _as_planes(head_groups)
        if heads.stride() != groups.stride():
            heads, groups = heads.contiguous(), groups.contiguous()
        head, slots, head_strides = 1, heads.shape[1], heads.stride()
    else:
        head, slots, heads, groups, head_strides = 0, top_k, placeholder, placeholder, no_strides
    rank_bits = sum(group << (2 * rank) for rank, group in enumerate(rank_groups)) if head == 0 else 0

    if isinstance(valid, LabelMap):
        valid_mode, mask, mask_strides = 2, placeholder, (0, 0)
        label_args = _label_arguments(valid, student_logits)
        resize = tuple(valid.gt.shape[1:]) != tuple(student_logits.shape[2:]) and student_logits.dim() > 2
    else:
        valid_mode = 0 if valid is None else 1
        mask = placeholder if valid is None else _as_planes(valid.unsqueeze(1))[:, 0].view(torch.uint8)
        mask_strides = (0, 0) if valid is None else mask.stride()
        label_args = (placeholder, 1, 1, 1, 1.0, 1.0, -1, 0, 0, 0)
        resize = False
    if head_from_labels and valid_mode != 2:
        raise ValueError('the label as head class needs the labels (a LabelMap) as the valid pixels')
    clamp_bounds = (math.log(mass_clamp), math.log1p(-mass_clamp)) if mass_clamp else (0.0, 0.0)
    weights = _device_constants((*map(float, group_weights), float(mass_weight), float(temperature), *clamp_bounds),
                                compute, device)
    labels_tensor, width, label_height, label_width, row_scale, col_scale, ignore_index = label_args[:7]
    args = (student, teacher, grad if with_grad else placeholder, mask, labels_tensor, heads, groups, weights,
            partials, num_classes, num_pixels, width, label_height, label_width, row_scale, col_scale, ignore_index,
            *student.stride(), *teacher.stride(), *(grad.stride() if with_grad else no_strides), *mask_strides,
            *label_args[7:], *head_strides)
    constants = dict(NUM_GROUPS=num_groups, HEAD=head, SLOTS=slots, RANK_GROUPS=rank_bits, VALID=valid_mode,
                     RESIZE_LABELS=resize, WITH_GRAD=with_grad, MASS_CLAMP=bool(mass_clamp),
                     FLOAT64=compute == torch.float64, BLOCK_P=block_p, num_warps=LAUNCH['num_warps'])
    return (num_blocks, num_images), args, constants, partials, grad


def launch(student_logits: Tensor, teacher_logits: Tensor, valid: Union[Tensor, LabelMap, None],
           group_weights: Sequence[float], mass_weight: float, temperature: float,
           head_indices: Optional[Tensor] = None, head_groups: Optional[Tensor] = None, top_k: int = 0,
           rank_groups: Sequence[int] = (),
           head_from_labels: bool = False, with_grad: bool = True,
           mass_clamp: Optional[float] = None) -> Tuple[Tensor, Tensor, Tensor, Optional[Tensor]]:
    """Run the loss kernel and the means kernel.

    Args: as :func:`gdkd_seg.losses.kernels.grouped_kd_loss` (logits of the same shape, any floating dtypes), and
        head_from_labels: the head is each pixel's label (``valid`` a :class:`LabelMap`), in group 0.
        with_grad: also return the gradient of each valid pixel's loss w.r.t. its student logits.
        mass_clamp: None (exact masses) or the eps of the authors' mass clamp.

    Returns:
        ``(loss, parts, inv_count, grad)``: the mean loss (0-dim), the mean mass KL and group KLs ``(m + 1,)``,
        1 / the count of valid pixels (0-dim) and the gradient shaped like the student logits in the compute dtype
        (0 at pixels that do not count), or None.
    """
    num_groups = len(group_weights)
    if num_groups > MAX_GROUPS:
        raise ValueError(f'the Triton kernel takes at most {MAX_GROUPS} class groups, got {num_groups}')
    grid, args, constants, partials, grad = kernel_arguments(
        student_logits, teacher_logits, valid, group_weights, mass_weight, temperature, head_indices, head_groups,
        top_k, rank_groups, head_from_labels, with_grad, mass_clamp)
    if constants['SLOTS'] > MAX_HEAD:
        raise ValueError(f'the Triton kernel takes at most {MAX_HEAD} head classes a pixel, got {constants["SLOTS"]}')
    triton_kernels = kernels()
    launch_kernel(triton_kernels.grouped_kl_kernel, grid, *args, **constants)
    loss = partials.new_empty(())
    parts = partials.new_empty((num_groups + 1,))
    inv_count = partials.new_empty(())
    columns = num_groups + 3
    launch_kernel(triton_kernels.means_kernel, (1,), partials, loss, parts, inv_count, partials.shape[0],
                  NUM_COLUMNS=columns, BLOCK_C=_next_power_of_2(columns), BLOCK_R=128 if partials.is_cuda else 4096)
    if with_grad:
        grad = grad[0].t() if student_logits.dim() == 2 else grad.view(student_logits.shape)
    return loss, parts, inv_count, grad


class TritonGroupedKL(torch.autograd.Function):
    """``(loss, parts)``: the mean loss over valid pixels and ``(kl_mass, kl_group_0, ...)``, not differentiable;
    backward is one launch."""

    @staticmethod
    def forward(ctx, student_logits: Tensor, teacher_logits: Tensor, valid: Union[Tensor, LabelMap, None],
                partition: dict, group_weights: Sequence[float], mass_weight: float, temperature: float,
                mass_clamp: Optional[float]) -> Tuple[Tensor, Tensor]:
        loss, parts, inv_count, grad = launch(student_logits, teacher_logits, valid, group_weights, mass_weight,
                                              temperature, with_grad=ctx.needs_input_grad[0], mass_clamp=mass_clamp,
                                              **partition)
        ctx.save_for_backward(grad, inv_count)
        ctx.student_dtype = student_logits.dtype
        ctx.mark_non_differentiable(parts)
        ctx.set_materialize_grads(False)
        return loss, parts

    @staticmethod
    def backward(ctx, grad_loss: Optional[Tensor], unused_parts_grad: None):
        grad, inv_count = ctx.saved_tensors
        if grad_loss is None:
            return (None,) * 8
        scaled = torch.empty_like(grad, dtype=ctx.student_dtype)
        numel = grad.numel()
        launch_kernel(kernels().scale_gradient_kernel, (-(-numel // SCALE_BLOCK),), grad, scaled, grad_loss,
                      inv_count, numel, BLOCK=SCALE_BLOCK)
        return scaled, None, None, None, None, None, None, None
