"""Kernel launches per call: how many pieces of device work one call of a step queues.

A launch costs the host a few microseconds whatever its size, so at small sizes a step's launch count, not its
arithmetic, sets its time. :func:`count_launches` counts them:

* on CUDA, what the GPU ran: the PyTorch profiler (Kineto/CUPTI) traces one call, and the GPU-side events are
  counted: kernels (PyTorch's, Triton's, cuBLAS's), memsets and memcpys. GPU-side annotations of profiler ranges
  and synchronisations are no work and are not counted;
* on CPU, what a GPU would run: every ATen operator one call dispatches that computes something, each one launch
  (a kernel, or a memset or memcpy), which is what PyTorch's CUDA operators mostly are; plus each launch of a Triton
  kernel through :func:`gdkd_seg.losses.kernels.gpu.launch_kernel` (the interpreter on CPU tensors) and each call of
  a C function of the fused CPU kernel (:func:`gdkd_seg.losses.kernels.cpu.library`), one launch each. Not
  counted: allocations (``empty`` and the like: the caching allocator, no kernel), views (operators whose outputs
  alias an input without writing it: ``view``, ``t``, ``permute``, ``expand``, ``select``, ``slice``, ``detach``...
  and ``_unsafe_view``, a view the schema does not mark as one) and operators on no tensor at all
  (``promote_types``). An approximation of a GPU's count where one operator launches several kernels on CUDA
  (``topk``, ``sort``) or where a copy happens below the dispatcher (``torch.tensor(..., device='cuda')``).
"""
from contextlib import contextmanager
from typing import Callable, Iterator, List

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes
from torch.utils._pytree import tree_flatten

from ..losses.kernels import cpu, gpu

# ATen operators that only allocate or re-describe memory: no kernel on a GPU
NO_DEVICE_WORK = frozenset({
    torch.ops.aten.empty, torch.ops.aten.empty_strided, torch.ops.aten.empty_like, torch.ops.aten.new_empty,
    torch.ops.aten.new_empty_strided, torch.ops.aten.resize_, torch.ops.aten._unsafe_view,
})
# Kineto's activity types of work on the GPU (libkineto ActivityType names)
GPU_WORK = frozenset({'kernel', 'gpu_memcpy', 'gpu_memset'})


class _OpCounter(TorchDispatchMode):
    """Counts the ATen operators dispatched inside it that would be device work (see the module's doc)."""

    def __init__(self) -> None:
        super().__init__()
        self.launches = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not (func.is_view or func.overloadpacket in NO_DEVICE_WORK or not _touches_tensors(args, kwargs, out)):
            self.launches += 1
        return out


def _touches_tensors(*values) -> bool:
    leaves, _ = tree_flatten(values)
    return any(isinstance(leaf, torch.Tensor) for leaf in leaves)


@contextmanager
def _counting_kernel_calls(counter: _OpCounter) -> Iterator[None]:
    """Inside it, each Triton launch through ``gpu.launch_kernel`` and each call of a C function of the fused CPU
    kernel adds one to ``counter.launches``, and runs with the operator counting suspended: Triton's interpreter
    copies tensors through PyTorch to run a kernel on CPU, and those copies are not launches."""

    def counted(function: Callable) -> Callable:
        def call(*args, **kwargs):
            counter.launches += 1
            with _disable_current_modes():
                return function(*args, **kwargs)
        return call

    patched: List[tuple] = []  # (owner, attribute, original)
    launch_kernel = getattr(gpu, 'launch_kernel', None)
    if launch_kernel is not None:
        patched.append((gpu, 'launch_kernel', launch_kernel))
    library = cpu.library()
    if library is not None:
        # ctypes keeps each C function the library has looked up as an attribute of the library object, where
        # the kernel's callers find it
        patched += [(library, name, value) for name, value in vars(library).items()
                    if isinstance(value, library._FuncPtr)]
    try:
        for owner, name, original in patched:
            setattr(owner, name, counted(original))
        yield
    finally:
        for owner, name, original in patched:
            setattr(owner, name, original)


def _is_gpu_work(event) -> bool:
    """Whether a profiler event is work the GPU ran; PyTorch builds whose events carry no Kineto activity type are
    read by the event's device (every GPU-side event of those is a kernel, memset or memcpy)."""
    activity = getattr(event, 'activity_type', None)
    if activity is not None:
        return activity in GPU_WORK
    return event.device_type == DeviceType.CUDA


def _count_on_cuda(step: Callable[[], object]) -> int:
    step()  # warm-up: first calls compile, autotune and allocate, which later calls do not
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    events = prof.events()
    launches = sum(1 for event in events if _is_gpu_work(event))
    if launches == 0:
        # a step may queue nothing, but then the host made no launch call either; calls without GPU events mean
        # the profiler could not trace the GPU (no CUPTI), and 0 would be a wrong answer
        calls = [event.name for event in events
                 if getattr(event, 'activity_type', None) in ('cuda_runtime', 'cuda_driver') and 'Launch' in event.name]
        if calls:
            raise RuntimeError(f'the profiler saw {len(calls)} launch calls ({calls[0]}, ...) but no GPU activity: '
                               'CUPTI is unavailable to it, so launches cannot be counted')
    return launches


def count_launches(step: Callable[[], object], device: str) -> int:
    """The number of device launches one call of ``step`` makes (what is counted: the module's doc).

    Args:
        step: the call to count, without arguments; on CUDA it is called twice (a warm-up, then the counted call).
        device: ``'cuda'`` (the GPU's trace) or ``'cpu'`` (the launches a GPU would make).

    Returns:
        The count.

    Raises:
        RuntimeError: on CUDA, when the profiler cannot trace the GPU.
    """
    if torch.device(device).type == 'cuda':
        return _count_on_cuda(step)
    counter = _OpCounter()
    with _counting_kernel_calls(counter), counter:
        step()
    return counter.launches
