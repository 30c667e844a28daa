"""The GPU implementation of the grouped KD loss: a fused Triton kernel (``grouped_kl_triton.py``), launched from here.

One launch computes, for a tile of pixels and all their classes: the teacher's top-k (or the explicit head
classes), the group log-sum-exps of teacher and student, the mass KL and the within-group KLs, the per-pixel loss
and the student gradient; it writes the gradient (for a unit per-pixel loss) and each program's sums of the loss,
its parts and the valid-pixel count. A second tiny reduction adds the programs' sums, so forward is two kernels
after the input checks and backward is one multiply. The loss is the definition of :mod:`gdkd_seg.losses.kernels`
with its numerics (group log-sum-exps with each group's own maximum, shifted logits formed before they are subtracted).

Decisions:

* layout: logits are read where they lie, as ``(image, class, pixel)`` with any strides (``(B, C, H, W)``
  contiguous or channels_last, ``(N, C)`` rows as one image of N pixels), so nothing is copied or transposed;
* precision: fp16/bf16/float32 logits are computed in float32, float64 in float64; the gradient is kept in the
  compute dtype and cast to the student's dtype in backward;
* groups: at most ``MAX_GROUPS`` (4; GDKD uses 2, GDKD3 3, DKD 2, KD 1); more fall back to PyTorch;
* tiles: all classes of ``BLOCK_P`` pixels, ``BLOCK_C × BLOCK_P ≈ LAUNCH['tile']`` elements (see ``LAUNCH``);
* determinism: per-program sums reduced by ``torch.sum``, no atomics, so a rerun gives the same bits;
* without a GPU: :func:`interpreted_on_cpu` runs the same kernel on CPU tensors through Triton's interpreter
  (``TRITON_INTERPRET=1``, set by ``tests/conftest.py``), which is how CI tests it;
* ``GDKD_TRITON_KERNEL=0`` (or :func:`switched_off`) turns the kernel off and the PyTorch implementation runs.
"""
import math
import os
import warnings
from contextlib import nullcontext
from functools import lru_cache
from typing import Optional, Sequence, Tuple

import numpy
import torch
from torch import Tensor

from .switch import Switch

MAX_GROUPS = 4
# elements per tile and warps per program on GPUs (docs/performance.md); the interpreter pays per operation, not per
# element, so it takes whole images (up to its tile) in one program
LAUNCH = dict(tile=2048, num_warps=4, interpreter_tile=1 << 15)

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


def supports(logits: Tensor, num_groups: int) -> bool:
    """Whether the kernel takes these logits: CUDA tensors (CPU ones inside :func:`interpreted_on_cpu`) of a
    floating dtype, at most ``MAX_GROUPS`` groups, Triton available and not switched off."""
    on_device = logits.is_cuda or (_on_cpu.on and logits.device.type == 'cpu')
    return (on_device and not _off.on and logits.is_floating_point() and num_groups <= MAX_GROUPS
            and available())


@lru_cache(maxsize=None)
def _kernel():
    """The jitted kernel (interpreted when the process started with ``TRITON_INTERPRET=1``)."""
    import triton  # noqa: PLC0415  (optional, see available())

    from .grouped_kl_triton import grouped_kl_kernel  # noqa: PLC0415  (imports triton.language)
    return triton.jit(grouped_kl_kernel)


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


def launch(student_logits: Tensor, teacher_logits: Tensor, valid: Optional[Tensor], group_weights: Sequence[float],
           mass_weight: float, temperature: float, head_indices: Optional[Tensor] = None,
           head_groups: Optional[Tensor] = None, top_k: int = 0, rank_groups: Sequence[int] = (),
           with_grad: bool = True, mass_clamp: Optional[float] = None) -> Tuple[Tensor, Optional[Tensor]]:
    """Run the kernel.

    Args: as :func:`gdkd_seg.losses.gdkd.grouped_kd_loss` (logits of the same shape, any floating dtypes), and
        with_grad: also return the gradient of each valid pixel's loss w.r.t. its student logits.
        mass_clamp: None (exact masses) or the eps of the authors' mass clamp.

    Returns:
        ``(sums, grad)``: ``sums`` holds, summed over valid pixels, the loss, the mass KL, each group's KL, and
        last the valid-pixel count; ``grad`` is shaped like the student logits in the compute dtype (0 at
        invalid pixels), or None.
    """
    num_groups = len(group_weights)
    if num_groups > MAX_GROUPS:
        raise ValueError(f'the Triton kernel takes at most {MAX_GROUPS} class groups, got {num_groups}')
    device = student_logits.device
    compute = torch.float64 if torch.float64 in (student_logits.dtype, teacher_logits.dtype) else torch.float32
    student, teacher = _as_planes(student_logits), _as_planes(teacher_logits)
    num_images, num_classes, num_pixels = student.shape
    block_c = _next_power_of_2(num_classes)
    if device.type == 'cpu':
        block_p = _next_power_of_2(max(LAUNCH['interpreter_tile'] // block_c, 1))
    else:
        block_p = min(256, _next_power_of_2(max(LAUNCH['tile'] // block_c, 1)))
    block_p = min(block_p, _next_power_of_2(num_pixels))
    num_blocks = -(-num_pixels // block_p)
    sums = torch.empty((num_images * num_blocks, num_groups + 3), dtype=compute, device=device)
    grad = torch.empty_like(student, dtype=compute) if with_grad else None
    explicit = head_indices is not None
    if explicit:
        heads, groups = _as_planes(head_indices), _as_planes(head_groups)
        if heads.stride() != groups.stride():
            heads, groups = heads.contiguous(), groups.contiguous()
        head_size = heads.shape[1]
    else:
        heads = groups = torch.empty(0, dtype=torch.int64, device=device)
        head_size = top_k
    ranks = _device_constants(tuple(rank_groups) or (0,), torch.int32, device)
    clamp_bounds = (math.log(mass_clamp), math.log1p(-mass_clamp)) if mass_clamp else (0.0, 0.0)
    weights = _device_constants((*map(float, group_weights), float(mass_weight), float(temperature), *clamp_bounds),
                                compute, device)
    valid_plane = None if valid is None else _as_planes(valid.unsqueeze(1))[:, 0].view(torch.uint8)
    placeholder = sums  # for pointers the kernel does not read (the flags below say so)
    # on CPU the interpreter computes masked-off lanes too (log 0 and the like) in numpy: quiet its warnings
    with numpy.errstate(all='ignore') if device.type == 'cpu' else nullcontext():
        _kernel()[(num_blocks, num_images)](
            student, teacher, grad if with_grad else placeholder, placeholder if valid is None else valid_plane,
            heads, groups, ranks, weights, sums, num_classes, num_pixels, head_size,
            *student.stride(), *teacher.stride(), *(grad.stride() if with_grad else (0, 0, 0)),
            *((0, 0) if valid is None else valid_plane.stride()), *(heads.stride() if explicit else (0, 0, 0)),
            NUM_GROUPS=num_groups, TOP_K=0 if explicit else top_k, EXPLICIT_HEAD=explicit,
            HAS_VALID=valid is not None, WITH_GRAD=with_grad, MASS_CLAMP=bool(mass_clamp),
            FLOAT64=compute == torch.float64, BLOCK_C=block_c, BLOCK_P=block_p, GROUP_ROWS=MAX_GROUPS,
            num_warps=LAUNCH['num_warps'])
    if with_grad:
        grad = grad[0].t() if student_logits.dim() == 2 else grad.view(student_logits.shape)
    return sums.sum(0), grad


class TritonGroupedKL(torch.autograd.Function):
    """Means over valid pixels ``(loss, kl_mass, kl_group_0, ...)`` as one tensor; backward is one multiply."""

    @staticmethod
    def forward(ctx, student_logits: Tensor, teacher_logits: Tensor, valid: Optional[Tensor], partition: dict,
                group_weights: Sequence[float], mass_weight: float, temperature: float,
                mass_clamp: Optional[float]) -> Tensor:
        sums, grad = launch(student_logits, teacher_logits, valid, group_weights, mass_weight, temperature,
                            with_grad=ctx.needs_input_grad[0], mass_clamp=mass_clamp, **partition)
        count = sums[-1:].clamp(min=1)
        ctx.save_for_backward(grad, count)
        ctx.student_dtype = student_logits.dtype
        return sums[:-1] / count

    @staticmethod
    def backward(ctx, grad_means: Tensor, *unused):
        grad, count = ctx.saved_tensors
        grad = grad * (grad_means[:1] / count).to(grad.dtype)
        return grad.to(ctx.student_dtype), None, None, None, None, None, None, None
