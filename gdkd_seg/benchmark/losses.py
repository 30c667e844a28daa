"""The GDKD loss against the naive form: forward+backward time, peak extra memory, agreement and finiteness (the
logic of ``tools/analysis_tools/benchmark_losses.py``).

All variants compute GDKD with the defaults (k=3, w0=1, w1=1, w2=2, T=1, all pixels valid): ``ours`` as users get
it (on CPU the fused C kernel, on GPU the fused Triton kernel), ``ours-pytorch`` the PyTorch implementation (what
runs where neither kernel can), and ``naive`` (:func:`gdkd_seg.benchmark.naive.naive_gdkd`). For each size, in the
same run:

* forward+backward time w.r.t. the student logits: median over ``repeats`` runs after warm-up, the variants
  alternating;
* peak extra memory of one forward+backward, beyond the inputs that already exist. On CUDA:
  ``torch.cuda.max_memory_allocated`` minus the allocation before the call. On CPU: the PyTorch profiler's
  allocator events (``profile_memory=True``): every tensor allocation and free made during the call, summed in
  time order, and the maximum of that running sum -- the same quantity as on CUDA, counted in tensor bytes (not
  process RSS, which the allocator's caching and the page cache blur);
* the relative difference between ours and naive on tame inputs (logits ~ N(0, 1)), as a check that they compute
  the same function;
* whether each variant gives a finite loss and gradient on a confident input (teacher and student logits 50*randn):
  the naive form sums probabilities and takes the log, which underflows to log(0) there.
"""
import functools
import os
from typing import Callable, Dict, Iterator, List, Sequence, Tuple

import torch
from torch._C._profiler import _EventType
from torch.profiler import ProfilerActivity, profile

from ..losses import gdkd_loss
from ..losses.kernels import cpu, gpu
from ..utils.errors import ConfigError
from ..utils.tables import markdown_row, markdown_table
from .naive import naive_gdkd
from .timing import median_times, synchronize

PRESETS = {
    'seg19b2': ('seg C=19, B=2, 64x128', (2, 19, 64, 128)),
    'seg19': ('seg C=19, B=8, 64x128', (8, 19, 64, 128)),
    'seg150': ('seg C=150, B=8, 64x64', (8, 150, 64, 64)),
    'cls1000': ('cls C=1000, N=512', (512, 1000)),
    'city': ('Cityscapes train C=19, B=16, 128x256', (16, 19, 128, 256)),
}
DEFAULT_SIZES = {'cpu': 'seg19,seg150,cls1000', 'cuda': 'seg19b2,seg19,seg150,cls1000,city'}
Size = Tuple[str, Tuple[int, ...]]


def ours_gdkd(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    return gdkd_loss(student_logits, teacher_logits, None, k=3, w0=1.0, w1=1.0, w2=2.0, temperature=1.0)[0]


def ours_pytorch_gdkd(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    with cpu.switched_off(), gpu.switched_off():
        return ours_gdkd(student_logits, teacher_logits)


VARIANTS: Dict[str, Callable] = {'ours': ours_gdkd, 'ours-pytorch': ours_pytorch_gdkd, 'naive': naive_gdkd}


def parse_size(spec: str) -> Size:
    """A preset name, ``CxBxHxW`` (segmentation logits (B, C, H, W)) or ``CxN`` (classification logits (N, C)).

    Raises:
        ConfigError: for anything else.
    """
    if spec in PRESETS:
        return PRESETS[spec]
    try:
        dims = [int(d) for d in spec.lower().split('x')]
    except ValueError:
        dims = []
    if len(dims) == 4:
        C, B, H, W = dims
        return f'seg C={C}, B={B}, {H}x{W}', (B, C, H, W)
    if len(dims) == 2:
        C, N = dims
        return f'cls C={C}, N={N}', (N, C)
    raise ConfigError(f'--sizes: {spec!r} is neither a preset ({", ".join(PRESETS)}) nor CxBxHxW nor CxN')


def make_inputs(shape: Sequence[int], scale: float, device: str, seed: int = 0):
    """N(0, scale²) student logits (requiring grad) and teacher logits."""
    generator = torch.Generator().manual_seed(seed)
    student = (torch.randn(shape, generator=generator) * scale).to(device).requires_grad_()
    teacher = (torch.randn(shape, generator=generator) * scale).to(device)
    return student, teacher


def _step(fn: Callable, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    student.grad = None
    loss = fn(student, teacher)
    loss.backward()
    return loss.detach()


def peak_extra_bytes(fn: Callable, student: torch.Tensor, teacher: torch.Tensor, device: str) -> int:
    """Peak tensor memory allocated during one forward+backward beyond what existed before it."""
    student.grad = None
    if device == 'cuda':
        synchronize(device)
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        _step(fn, student, teacher)
        synchronize(device)
        return torch.cuda.max_memory_allocated() - before
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        _step(fn, student, teacher)
    allocations: List[Tuple[int, int]] = []

    def walk(node):
        if node.tag == _EventType.Allocation and node.extra_fields.device.type == 'cpu':
            allocations.append((node.start_time_ns, node.extra_fields.alloc_size))
        for child in node.children:
            walk(child)

    for root in prof.profiler.kineto_results.experimental_event_tree():
        walk(root)
    allocations.sort()
    current = peak = 0
    for _, size in allocations:  # frees are negative sizes
        current += size
        peak = max(peak, current)
    student.grad = None
    return peak


def finite_on_confident(fn: Callable, shape: Sequence[int], device: str) -> bool:
    """Whether ``fn`` gives a finite loss and gradient on teacher and student logits 50 * N(0, 1)."""
    student, teacher = make_inputs(shape, 50.0, device, seed=1)
    loss = _step(fn, student, teacher)
    return bool(torch.isfinite(loss)) and bool(torch.isfinite(student.grad).all())


def describe_kernel(device: str) -> str:
    """Which implementation ``ours`` is on ``device``."""
    if device == 'cpu':
        library = cpu.library()
        return f'fused C kernel {library._name}' if library is not None else 'NOT BUILT (ours = ours-pytorch)'
    if gpu.available():
        import triton  # noqa: PLC0415  (optional; available() said it imports)
        return f'fused Triton kernel (triton {triton.__version__}, launch {gpu.LAUNCH})'
    return 'Triton NOT AVAILABLE (ours = ours-pytorch)'


def loss_benchmark(sizes: Sequence[Size], device: str, repeats: int, warmup: int) -> Iterator[str]:
    """The benchmark's report in markdown, line by line as it is measured: how, then one table row per size."""
    device_name = torch.cuda.get_device_name() if device == 'cuda' else f'CPU, {torch.get_num_threads()} threads'
    memory_method = ('torch.cuda.max_memory_allocated minus allocated before the call' if device == 'cuda' else
                     'PyTorch profiler allocator events (profile_memory=True): peak of the running sum of tensor '
                     'allocations/frees during the call')
    load = (f'; load average at start {os.getloadavg()[0]:.2f} (other processes share the CPU: times are noisy)'
            if device == 'cpu' and hasattr(os, 'getloadavg') else '')
    lines = [
        '# GDKD loss benchmark: ours (gdkd_seg.losses.gdkd_loss) vs naive (probabilities summed and logged, -1000 '
        'masks)', '',
        f'- device: {device_name}; torch {torch.__version__}; float32 logits; GDKD k=3, w=(1, 1, 2), T=1; kernel: '
        f'{describe_kernel(device)}',
        f'- time: forward+backward w.r.t. the student, median of {repeats} runs after {warmup} warm-up, the variants '
        f'alternating{load}',
        f'- peak extra memory: {memory_method}; inputs (student, teacher) not counted, student grad counted',
        '- ms are milliseconds to 3 decimals on CUDA; speed-up and memory ratio: naive / ours; rel diff: |ours - '
        'naive| / |naive| on logits ~ N(0, 1); finite @50: loss and gradient finite on teacher and student logits '
        '50*randn', '']
    names = list(VARIANTS)
    header = (['size', 'logits'] + [f'{name} ms' for name in names] + ['speed-up']
              + [f'{name} peak MiB' for name in names] + ['memory ratio', 'rel diff']
              + [f'{name} finite @50' for name in names])
    yield from lines
    yield markdown_table(header, []).rstrip()
    digits = 3 if device == 'cuda' else 1
    for label, shape in sizes:
        student, teacher = make_inputs(shape, 1.0, device)
        with torch.no_grad():
            ours_value, naive_value = ours_gdkd(student, teacher), naive_gdkd(student, teacher)
        rel_diff = float((ours_value - naive_value).abs() / naive_value.abs())
        seconds = median_times({name: functools.partial(_step, fn, student, teacher) for name, fn in VARIANTS.items()},
                               repeats, device, warmup)
        student.grad = None
        memory = {name: peak_extra_bytes(fn, student, teacher, device) for name, fn in VARIANTS.items()}
        finite = {name: finite_on_confident(fn, shape, device) for name, fn in VARIANTS.items()}
        logits_mib = student.numel() * student.element_size() / 2 ** 20
        del student, teacher
        yield markdown_row([label, f'{tuple(shape)} {logits_mib:.1f} MiB'] +
                           [f'{1e3 * seconds[name]:.{digits}f}' for name in names] +
                           [f'{seconds["naive"] / seconds["ours"]:.2f}x'] +
                           [f'{memory[name] / 2 ** 20:.1f}' for name in names] +
                           [f'{memory["naive"] / max(memory["ours"], 1):.2f}x', f'{rel_diff:.1e}'] +
                           ['yes' if finite[name] else 'NO' for name in names])


def launch_sweep(launches: Sequence[Tuple[int, int]], sizes: Sequence[Size], device: str, repeats: int,
                 warmup: int) -> str:
    """The Triton kernel (``ours`` on CUDA) timed at each ``(tile, warps)`` launch setting: the table that sets
    :data:`gdkd_seg.losses.kernels.gpu.LAUNCH`."""
    default = dict(gpu.LAUNCH)
    rows = []
    try:
        for label, shape in sizes:
            student, teacher = make_inputs(shape, 1.0, device)
            row = [label]
            for tile, warps in launches:
                gpu.LAUNCH.update(tile=tile, num_warps=warps)
                seconds = median_times({'ours': functools.partial(_step, ours_gdkd, student, teacher)}, repeats, device,
                                       warmup)
                row.append(f'{1e3 * seconds["ours"]:.3f}')
            rows.append(row)
    finally:
        gpu.LAUNCH.update(default)
    header = ['size'] + [f'tile {tile}, {warps} warps' for tile, warps in launches]
    return '## Triton launch sweep (ours ms, forward+backward, median)\n\n' + markdown_table(header, rows)
