"""The GDKD loss against the naive form: forward+backward time, host time, launches, achieved bandwidth, peak extra
memory, agreement and finiteness (the logic of ``tools/analysis_tools/benchmark_losses.py``).

All variants compute GDKD with the defaults (k=3, w0=1, w1=1, w2=2, T=1, all pixels valid, no labels) on float32
logits: ``ours`` as users get it (on CPU the fused C kernel, on GPU the fused Triton kernels), ``ours-pytorch`` the
PyTorch implementation (what runs where neither kernel can), ``naive``
(:func:`gdkd_seg.benchmark.naive.naive_gdkd`) and, with ``compile_naive``, ``naive-compiled``
(``torch.compile(naive_gdkd, dynamic=False)``, compiled afresh for each size; a failed compile is reported in its
cells, and the other variants are measured all the same). For each size, in the same run:

* time of one forward+backward w.r.t. the student logits. On CUDA, the GPU time per call of calls made back to
  back (:func:`gdkd_seg.benchmark.timing.event_times`): CUDA events around ``repeats`` calls queued without waiting,
  median over ``rounds`` rounds, the variants alternating round by round -- the time a training step sees, the
  host's pace where queueing the kernels is slower than running them. On CPU, which has no queue, the median wall
  time of ``repeats`` single calls, the variants alternating call by call;
* host time of ours (CUDA only): the time the host spends issuing a call, from the same rounds (before the final
  wait, / ``repeats``). A call whose host time is near its GPU time is launch-bound;
* launches per call of each variant (:func:`gdkd_seg.benchmark.launches.count_launches`): on CUDA the kernels,
  memsets and memcpys the profiler sees the GPU run; on CPU the ATen operators that compute (one GPU launch each)
  plus fused-kernel calls. ``naive-compiled`` is counted on CUDA only: under the dispatch mode that counts on CPU,
  ``torch.compile`` runs the function eagerly;
* achieved bandwidth of ours: the bytes a bandwidth-bound implementation must move -- read the student and teacher
  logits once and write the student gradient once, in their dtypes -- over ours' time (the GPU time on CUDA, the
  wall time on CPU), in GB/s (1e9 bytes), and as a percentage of the device's copy bandwidth;
* the device's copy bandwidth, measured once at the start of the run
  (:func:`gdkd_seg.benchmark.timing.copy_bandwidth`): bytes read + written per second by the fastest of 5
  ``dst.copy_(src)`` of 1 GiB (CUDA events on CUDA, the wall clock on CPU), the practical ceiling of a kernel
  that reads and writes memory once;
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
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch._C._profiler import _EventType
from torch.profiler import ProfilerActivity, profile

from ..losses import gdkd_loss
from ..losses.kernels import cpu, gpu
from ..utils.errors import ConfigError
from ..utils.tables import markdown_row, markdown_table
from .launches import count_launches
from .naive import naive_gdkd
from .timing import copy_bandwidth, event_times, median_times, synchronize

PRESETS = {
    'seg19b2': ('seg C=19, B=2, 64x128', (2, 19, 64, 128)),
    'seg19': ('seg C=19, B=8, 64x128', (8, 19, 64, 128)),
    'full19': ('seg C=19, B=2, 512x1024 (label size)', (2, 19, 512, 1024)),
    'seg150': ('seg C=150, B=8, 64x64', (8, 150, 64, 64)),
    'ade150': ('seg C=150, B=2, 512x512', (2, 150, 512, 512)),
    'cls1000': ('cls C=1000, N=512', (512, 1000)),
    'city': ('Cityscapes train C=19, B=16, 128x256', (16, 19, 128, 256)),
}
DEFAULT_SIZES = {'cpu': 'seg19,seg150,cls1000', 'cuda': 'seg19b2,seg19,full19,seg150,ade150,cls1000,city'}
COPY_BYTES = 1 << 30  # well beyond the last-level caches of GPUs and CPUs
COPY_REPEATS = 5
NAIVE_COMPILED = 'naive-compiled'
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


def bytes_moved(student: torch.Tensor, teacher: torch.Tensor) -> int:
    """What a bandwidth-bound forward+backward must move: the student and teacher logits read once, the student
    gradient (the student's dtype) written once."""
    return 2 * student.numel() * student.element_size() + teacher.numel() * teacher.element_size()


def describe_kernel(device: str) -> str:
    """Which implementation ``ours`` is on ``device``."""
    if device == 'cpu':
        library = cpu.library()
        return f'fused C kernel {library._name}' if library is not None else 'NOT BUILT (ours = ours-pytorch)'
    if gpu.available():
        import triton  # noqa: PLC0415  (optional; available() said it imports)
        return f'fused Triton kernels (triton {triton.__version__}, launch {gpu.LAUNCH})'
    return 'Triton NOT AVAILABLE (ours = ours-pytorch)'


def time_steps(steps: Dict[str, Callable[[], object]], device: str, repeats: int, warmup: int,
               rounds: int) -> Tuple[Dict[str, float], Optional[Dict[str, float]]]:
    """Seconds per call of each step as the module's doc says: on CUDA the GPU time of back-to-back calls and the
    host time; on CPU the median wall time, and no host time (the host does the work).

    Returns:
        ``(seconds, host_seconds)``: name -> seconds per call; ``host_seconds`` None on CPU.
    """
    if device == 'cuda':
        times = event_times(steps, repeats, rounds, warmup)
        return {name: gpu_s for name, (gpu_s, _) in times.items()}, {name: host for name, (_, host) in times.items()}
    return median_times(steps, repeats, device, warmup), None


def _one_line(error: BaseException) -> str:
    """An exception as one line of a markdown cell."""
    lines = str(error).strip().splitlines()
    text = f'{type(error).__name__}: {lines[0]}' if lines else type(error).__name__
    return text.replace('|', '/')[:160]


def _cells(names: Sequence[str], values: Dict[str, object], show: Callable[[object], str]) -> List[str]:
    """One cell a variant: ``show(value)``, or ``-`` for a variant without a value (not measured, failed)."""
    return [show(values[name]) if name in values else '-' for name in names]


def loss_benchmark(sizes: Sequence[Size], device: str, repeats: int, warmup: int, rounds: int = 5,
                   compile_naive: bool = False, copy_bytes: int = COPY_BYTES) -> Iterator[str]:
    """The benchmark's report in markdown, line by line as it is measured: how, then one table row per size.

    Args:
        sizes: ``(label, logits shape)`` pairs (:func:`parse_size`).
        device: ``'cpu'`` or ``'cuda'``.
        repeats: on CUDA calls a round, on CPU timed calls (each a variant).
        warmup: untimed calls of each variant before timing.
        rounds: on CUDA, rounds a variant (medians reported); unused on CPU.
        compile_naive: add the ``naive-compiled`` variant (a compile per size: minutes on CPU).
        copy_bytes: bytes of the copy that measures the device's bandwidth.

    Yields:
        The report's lines.
    """
    cuda = device == 'cuda'
    device_name = torch.cuda.get_device_name() if cuda else f'CPU, {torch.get_num_threads()} threads'
    memory_method = ('torch.cuda.max_memory_allocated minus allocated before the call' if cuda else
                     'PyTorch profiler allocator events (profile_memory=True): peak of the running sum of tensor '
                     'allocations/frees during the call')
    load = (f'; load average at start {os.getloadavg()[0]:.2f} (other processes share the CPU: times are noisy)'
            if not cuda and hasattr(os, 'getloadavg') else '')
    timing = (f'GPU time per call of {repeats} calls queued back to back (CUDA events), median of {rounds} rounds '
              f'after {warmup} warm-up calls, the variants alternating round by round' if cuda else
              f'wall time, median of {repeats} calls after {warmup} warm-up, the variants alternating call by call')
    bandwidth = copy_bandwidth(device, copy_bytes, COPY_REPEATS)
    copy_timer = 'CUDA events' if cuda else 'wall clock'
    names = list(VARIANTS) + ([NAIVE_COMPILED] if compile_naive else [])
    counted = [name for name in names if cuda or name != NAIVE_COMPILED]
    yield from [
        '# GDKD loss benchmark: ours (gdkd_seg.losses.gdkd_loss) vs naive (probabilities summed and logged, -1000 '
        'masks)', '',
        f'- device: {device_name}; torch {torch.__version__}; float32 logits; GDKD k=3, w=(1, 1, 2), T=1, no labels; '
        f'kernel: {describe_kernel(device)}',
        f'- time (ms): forward+backward w.r.t. the student, {timing}{load}',
        '- ours host ms: ' + ('host time issuing one call, from the same rounds (before waiting for the GPU)' if cuda
                              else "'-' on CPU, where the host does the work (the time column)"),
        '- launches: ' + ('kernels, memsets and memcpys the GPU ran in one call (PyTorch profiler)' if cuda else
                          'ATen operators that compute (a GPU launch each) and fused-kernel calls in one call; '
                          f'{NAIVE_COMPILED} not counted on CPU'),
        f'- ours GB/s: (student + teacher logits read once + student gradient written once) / ours time; % of '
        f'bandwidth: of the device copy bandwidth {bandwidth / 1e9:.1f} GB/s = read + write bytes of the fastest of '
        f'{COPY_REPEATS} dst.copy_(src) of {copy_bytes / 2 ** 30:.3g} GiB ({copy_timer}), measured at the start of '
        'this run',
        f'- peak extra memory: {memory_method}; inputs (student, teacher) not counted, student grad counted',
        '- speed-up and memory ratio: naive / ours; rel diff: |ours - naive| / |naive| on logits ~ N(0, 1); finite '
        '@50: loss and gradient finite on teacher and student logits 50*randn', '']
    header = (['size', 'logits'] + [f'{name} ms' for name in names] + ['speed-up', 'ours host ms']
              + [f'{name} launches' for name in names] + ['ours GB/s', 'ours % of bandwidth']
              + [f'{name} peak MiB' for name in names] + ['memory ratio', 'rel diff']
              + [f'{name} finite @50' for name in names])
    yield markdown_table(header, []).rstrip()
    digits = 3 if cuda else 1
    for label, shape in sizes:
        student, teacher = make_inputs(shape, 1.0, device)
        with torch.no_grad():
            ours_value, naive_value = ours_gdkd(student, teacher), naive_gdkd(student, teacher)
        rel_diff = float((ours_value - naive_value).abs() / naive_value.abs())
        variants = dict(VARIANTS)
        failed: Dict[str, str] = {}
        if compile_naive:
            torch.compiler.reset()  # a fresh static-shape compile for each size, below dynamo's recompile limit
            compiled = torch.compile(naive_gdkd, dynamic=False)
            try:
                _step(compiled, student, teacher)  # compiles forward and backward
                variants[NAIVE_COMPILED] = compiled
            except Exception as error:  # noqa: BLE001  (any compile failure is a result to report)
                failed[NAIVE_COMPILED] = f'failed: {_one_line(error)}'
        steps = {name: functools.partial(_step, fn, student, teacher) for name, fn in variants.items()}
        seconds, host = time_steps(steps, device, repeats, warmup, rounds)
        launches = {name: count_launches(steps[name], device) for name in counted if name in steps}
        student.grad = None
        memory = {name: peak_extra_bytes(fn, student, teacher, device) for name, fn in variants.items()}
        finite = {name: finite_on_confident(fn, shape, device) for name, fn in variants.items()}
        logits_mib = student.numel() * student.element_size() / 2 ** 20
        achieved = bytes_moved(student, teacher) / seconds['ours']
        del student, teacher
        yield markdown_row([label, f'{tuple(shape)} {logits_mib:.1f} MiB']
                           + [failed[name] if name in failed else f'{1e3 * seconds[name]:.{digits}f}'
                              for name in names]
                           + [f'{seconds["naive"] / seconds["ours"]:.2f}x',
                              f'{1e3 * host["ours"]:.3f}' if host else '-']
                           + _cells(names, launches, str)
                           + [f'{achieved / 1e9:.3g}', f'{100 * achieved / bandwidth:.3g}']
                           + _cells(names, memory, lambda size: f'{size / 2 ** 20:.1f}')
                           + [f'{memory["naive"] / max(memory["ours"], 1):.2f}x', f'{rel_diff:.1e}']
                           + _cells(names, finite, lambda ok: 'yes' if ok else 'NO'))


def launch_sweep(launches: Sequence[Tuple[int, int]], sizes: Sequence[Size], device: str, repeats: int,
                 warmup: int, rounds: int = 5) -> str:
    """The Triton kernels (``ours`` on CUDA) timed at each ``(pixels, warps)`` launch setting -- pixels a program
    owns, warps a program -- as the loss benchmark times them: the table that sets
    :data:`gdkd_seg.losses.kernels.gpu.LAUNCH`, which is restored afterwards.

    Raises:
        KeyError: when ``gpu.LAUNCH`` has no ``pixels`` or ``num_warps`` setting to sweep.
    """
    missing = {'pixels', 'num_warps'} - set(gpu.LAUNCH)
    if missing:
        raise KeyError(f'gpu.LAUNCH has no {sorted(missing)} to sweep: it holds {sorted(gpu.LAUNCH)}')
    default = dict(gpu.LAUNCH)
    rows = []
    try:
        for label, shape in sizes:
            student, teacher = make_inputs(shape, 1.0, device)
            row = [label]
            for pixels, warps in launches:
                gpu.LAUNCH.update(pixels=pixels, num_warps=warps)
                seconds, _ = time_steps({'ours': functools.partial(_step, ours_gdkd, student, teacher)}, device,
                                        repeats, warmup, rounds)
                row.append(f'{1e3 * seconds["ours"]:.3f}')
            rows.append(row)
    finally:
        gpu.LAUNCH.clear()
        gpu.LAUNCH.update(default)
    header = ['size'] + [f'{pixels} pixels, {warps} warps' for pixels, warps in launches]
    return '## Triton launch sweep (ours ms, forward+backward, timed as above)\n\n' + markdown_table(header, rows)
