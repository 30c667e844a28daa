"""The CPU implementation of the grouped KD loss: a fused C kernel (``grouped_kl.c``), built and called from here.

The kernel is plain C (no PyTorch headers), compiled on first use with the system C compiler in about a second
and cached, then called through ``ctypes`` on the tensors' memory. Decisions:

* compiler: ``$CC``, else ``cc``; flags: the first of ``FLAG_SETS`` that builds. ``-march=native`` vectorises with
  the CPU's widest units, so the cache key holds the CPU's model and feature flags as well as the source: a cache
  on a home directory shared by different nodes keeps one build per CPU type. ``-fopenmp``: threads from OpenMP,
  which in a PyTorch process using libgomp (Linux wheels) is PyTorch's own pool; without it, one thread;
* cache: ``$GDKD_KERNEL_CACHE``, else ``$XDG_CACHE_HOME/gdkd_seg``, else ``~/.cache/gdkd_seg``. Builds go to a
  temporary file renamed into place, so ranks compiling at the same time do not read half-written libraries;
* ``GDKD_CPU_KERNEL=0`` (or :func:`switched_off` in code) turns the kernel off: the PyTorch implementation
  (:mod:`.pytorch`) runs instead. When the build fails, one warning with the compiler's
  message says so and the PyTorch implementation runs: same values, 4-6x slower at segmentation sizes on CPU.
"""
import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..inputs import to_compute_dtype
from .switch import Switch

SOURCE = Path(__file__).with_name('grouped_kl.c')
BASE_FLAGS = ['-O3', '-std=c99', '-fPIC', '-fno-math-errno', '-fno-trapping-math']
FLAG_SETS = [BASE_FLAGS + ['-march=native', '-fopenmp'], BASE_FLAGS + ['-fopenmp'],
             BASE_FLAGS + ['-march=native', '-fopenmp-simd'], BASE_FLAGS + ['-fopenmp-simd']]
VARIANTS = {torch.float32: ('float', 'f32', 1), torch.float64: ('double', 'f64', 0)}  # C type, suffix, fast exp
ERRORS = {1: 'out of memory for per-thread scratch buffers', 2: 'more than 8 class groups'}


class _Args(ctypes.Structure):
    """Mirror of ``GroupedKLArgs`` in grouped_kl.c."""
    _fields_ = [
        ('student', ctypes.c_void_p), ('teacher', ctypes.c_void_p),
        ('num_images', ctypes.c_int64), ('num_classes', ctypes.c_int64), ('plane', ctypes.c_int64),
        ('head_size', ctypes.c_int64),
        ('head_indices', ctypes.c_void_p), ('head_groups', ctypes.c_void_p), ('rank_groups', ctypes.c_void_p),
        ('num_groups', ctypes.c_int64), ('group_weights', ctypes.c_void_p),
        ('mass_weight', ctypes.c_double), ('temperature', ctypes.c_double), ('mass_clamp', ctypes.c_double),
        ('valid', ctypes.c_void_p),
        ('total', ctypes.c_void_p), ('kl_mass', ctypes.c_void_p), ('kl_groups', ctypes.c_void_p),
        ('grad', ctypes.c_void_p),
        ('num_threads', ctypes.c_int64),
    ]


def cache_dir() -> Path:
    if os.environ.get('GDKD_KERNEL_CACHE'):
        return Path(os.environ['GDKD_KERNEL_CACHE'])
    return Path(os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache') / 'gdkd_seg'


def _cpu_fingerprint() -> str:
    if os.path.exists('/proc/cpuinfo'):
        with open('/proc/cpuinfo') as cpuinfo:
            return ''.join(sorted({line for line in cpuinfo if line.startswith(('model name', 'flags'))}))
    return platform.processor()


def _compile(compiler: str, flags: Sequence[str], target: Path) -> None:
    with tempfile.TemporaryDirectory(prefix='gdkd_kernel_') as build:
        objects = []
        for scalar, suffix, fast_exp in VARIANTS.values():
            obj = Path(build) / f'grouped_kl_{suffix}.o'
            subprocess.run([compiler, *flags, f'-DSCALAR={scalar}', f'-DSUFFIX={suffix}',
                            f'-DEXP_IS_FAST={fast_exp}', '-c', str(SOURCE), '-o', str(obj)], check=True,
                           capture_output=True, text=True)
            objects.append(str(obj))
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix='.partial')
        os.close(fd)
        try:
            subprocess.run([compiler, '-shared', *flags, *objects, '-o', partial, '-lm'], check=True,
                           capture_output=True, text=True)
            os.replace(partial, target)
        finally:
            if os.path.exists(partial):
                os.remove(partial)


@lru_cache(maxsize=None)
def library() -> Optional[ctypes.CDLL]:
    """The compiled kernel, built on first use; None when turned off or when it cannot be built (warned once)."""
    if os.environ.get('GDKD_CPU_KERNEL', '1') == '0':
        return None
    compiler = os.environ.get('CC') or 'cc'
    key = hashlib.sha256(SOURCE.read_bytes() + repr([compiler, FLAG_SETS, platform.machine(), platform.system(),
                                                     _cpu_fingerprint()]).encode()).hexdigest()[:16]
    target = cache_dir() / f'grouped_kl-{key}.so'
    try:
        if not target.exists():
            if shutil.which(compiler) is None:
                raise OSError(f'C compiler {compiler!r} not found')
            for flags in FLAG_SETS:
                try:
                    _compile(compiler, flags, target)
                    break
                except subprocess.CalledProcessError as error:
                    if flags is FLAG_SETS[-1]:
                        raise error
        lib = ctypes.CDLL(str(target))
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, 'stderr', None) or str(error)
        warnings.warn(f'gdkd_seg: could not build the fused CPU kernel of the GDKD losses ({detail.strip()}); using '
                      f'the PyTorch implementation (same values, slower on CPU). Install a C compiler or set CC; '
                      f'GDKD_CPU_KERNEL=0 silences this.', RuntimeWarning, stacklevel=3)
        return None
    for _, suffix, _ in VARIANTS.values():
        getattr(lib, f'grouped_kl_{suffix}').argtypes = [ctypes.POINTER(_Args)]
    return lib


_off = Switch()
# ``with switched_off():`` runs the losses without this kernel (benchmarks and tests compare implementations)
switched_off = _off.held


def supports(logits: Tensor) -> bool:
    """Whether the kernel takes these logits: on CPU (computed in float32, or float64 for float64 logits), a built
    kernel, and not inside :func:`switched_off`."""
    return (not _off.on and logits.device.type == 'cpu'
            and torch.promote_types(logits.dtype, torch.float32) in VARIANTS and library() is not None)


def _pointer(tensor: Optional[Tensor]) -> Optional[int]:
    return None if tensor is None else tensor.data_ptr()


def grouped_kl(student_logits: Tensor, teacher_logits: Tensor, group_weights: Sequence[float], mass_weight: float,
               temperature: float, head_indices: Optional[Tensor] = None, head_groups: Optional[Tensor] = None,
               top_k: int = 0, rank_groups: Sequence[int] = (), valid: Optional[Tensor] = None,
               with_grad: bool = True,
               mass_clamp: Optional[float] = None) -> Tuple[Tensor, Tensor, Tensor, Optional[Tensor]]:
    """Run the kernel on ``(B, C, *spatial)`` or ``(N, C)`` logits of one dtype (float32 or float64).

    Args:
        student_logits, teacher_logits: logits, same shape and dtype.
        group_weights: weights of the within-group KLs; the last group takes every class outside the head.
        mass_weight: weight of the group-mass KL.
        temperature: softmax temperature T.
        head_indices, head_groups: explicit head classes ``(B, k, *spatial)`` and their groups; or None, and then
        top_k, rank_groups: the head is the teacher's ``top_k`` classes, the j-th largest in group ``rank_groups[j]``.
        valid: boolean ``(B, *spatial)`` mask; invalid pixels get zero loss and gradient. None: all valid.
        with_grad: also return the gradient of each pixel's loss w.r.t. its student logits.
        mass_clamp: None (exact masses) or the eps of the authors' mass clamp.

    Returns:
        ``(total, kl_mass, kl_groups, grad)``: per-pixel ``(B, *spatial)`` loss and mass KL, ``(G, B, *spatial)``
        within-group KLs, and the gradient shaped like the logits (None without ``with_grad``).
    """
    if student_logits.dim() > 2:
        return _run(student_logits, teacher_logits, group_weights, mass_weight, temperature, head_indices,
                    head_groups, top_k, rank_groups, valid, with_grad, mass_clamp)

    # rows (N, C) as one image of N pixels (1, C, N), so that each class's values lie contiguously
    def as_plane(tensor: Optional[Tensor]) -> Optional[Tensor]:
        return None if tensor is None else tensor.t().unsqueeze(0)

    total, kl_mass, kl_groups, grad = _run(
        as_plane(student_logits), as_plane(teacher_logits), group_weights, mass_weight, temperature,
        as_plane(head_indices), as_plane(head_groups), top_k, rank_groups,
        None if valid is None else valid.unsqueeze(0), with_grad, mass_clamp)
    return total[0], kl_mass[0], kl_groups[:, 0], None if grad is None else grad[0].t()


def _run(student_logits: Tensor, teacher_logits: Tensor, group_weights: Sequence[float], mass_weight: float,
         temperature: float, head_indices: Optional[Tensor], head_groups: Optional[Tensor], top_k: int,
         rank_groups: Sequence[int], valid: Optional[Tensor], with_grad: bool,
         mass_clamp: Optional[float]) -> Tuple[Tensor, Tensor, Tensor, Optional[Tensor]]:
    """:func:`grouped_kl` on ``(B, C, *spatial)`` logits with at least one spatial dim."""
    lib = library()
    dtype = student_logits.dtype
    student, teacher = student_logits.contiguous(), teacher_logits.to(dtype).contiguous()
    num_images, num_classes = student.shape[:2]
    pixel_shape = (num_images, *student.shape[2:])
    plane = student[0, 0].numel()
    num_groups = len(group_weights)
    weights = torch.tensor(list(group_weights), dtype=torch.float64)
    if head_indices is not None:
        head_indices, head_groups = head_indices.long().contiguous(), head_groups.long().contiguous()
        head_size = head_indices.shape[1]
        ranks = None
    else:
        head_size = top_k
        ranks = torch.tensor(list(rank_groups) or [0], dtype=torch.int64)
    valid_bytes = None if valid is None else valid.to(torch.uint8).contiguous()
    total = student.new_empty(pixel_shape)
    kl_mass = student.new_empty(pixel_shape)
    kl_groups = student.new_empty((num_groups, *pixel_shape))
    grad = torch.empty_like(student) if with_grad else None
    args = _Args(_pointer(student), _pointer(teacher), num_images, num_classes, plane, head_size,
                 _pointer(head_indices), _pointer(head_groups), _pointer(ranks), num_groups, _pointer(weights),
                 float(mass_weight), float(temperature), float(mass_clamp or 0.0), _pointer(valid_bytes),
                 _pointer(total), _pointer(kl_mass), _pointer(kl_groups), _pointer(grad), torch.get_num_threads())
    status = getattr(lib, f'grouped_kl_{VARIANTS[dtype][1]}')(ctypes.byref(args))
    if status:
        raise RuntimeError(f'gdkd_seg CPU kernel failed: {ERRORS.get(status, status)}')
    return total, kl_mass, kl_groups, grad


class CGroupedKL(torch.autograd.Function):
    """Per-pixel ``(total, kl_mass, kl_groups)`` from the kernel; the student gradient it writes is kept for backward,
    which is one multiply."""

    @staticmethod
    def forward(ctx, student_logits: Tensor, teacher_logits: Tensor, valid: Optional[Tensor], partition: dict,
                group_weights: Sequence[float], mass_weight: float, temperature: float,
                mass_clamp: Optional[float]) -> Tuple[Tensor, Tensor, Tensor]:
        total, kl_mass, kl_groups, grad = grouped_kl(
            to_compute_dtype(student_logits), teacher_logits, group_weights, mass_weight, temperature, valid=valid,
            with_grad=ctx.needs_input_grad[0], mass_clamp=mass_clamp, **partition)
        ctx.save_for_backward(grad)
        ctx.student_dtype = student_logits.dtype
        ctx.mark_non_differentiable(kl_mass, kl_groups)
        return total, kl_mass, kl_groups

    @staticmethod
    def backward(ctx, grad_total: Tensor, *unused_part_grads):
        grad, = ctx.saved_tensors
        grad = grad * grad_total.unsqueeze(1).to(grad.dtype)
        return grad.to(ctx.student_dtype), None, None, None, None, None, None, None
