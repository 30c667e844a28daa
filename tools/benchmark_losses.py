"""Benchmark ``gdkd_seg.losses.gdkd_loss`` against the naive GDKD form that authors' code typically uses.

All variants compute GDKD with the defaults (k=3, w0=1, w1=1, w2=2, T=1, all pixels valid): ``ours`` as users get
it (on CPU the fused C kernel, on GPU the fused Triton kernel), ``ours-pytorch`` our PyTorch implementation (what
runs where neither kernel can), and ``naive``. For each size the script reports, in the same run:

* forward+backward time w.r.t. the student logits: median over ``--repeats`` runs after warm-up;
* peak extra memory of one forward+backward, beyond the inputs that already exist. On CUDA:
  ``torch.cuda.max_memory_allocated`` minus the allocation before the call. On CPU: the PyTorch profiler's
  allocator events (``profile_memory=True``): every tensor allocation and free made during the call, summed in
  time order, and the maximum of that running sum -- the same quantity as on CUDA, counted in tensor bytes (not
  process RSS, which the allocator's caching and the page cache blur);
* the relative difference between ours and naive on tame inputs (logits ~ N(0, 1)), as a check that they
  compute the same function;
* whether each variant gives a finite loss and gradient on a confident input (teacher and student logits 50*randn):
  the naive form sums probabilities and takes the log, which underflows to log(0) there.

Usage::

    python tools/benchmark_losses.py                       # CPU, the three default sizes
    python tools/benchmark_losses.py --device cuda         # adds B=2 and the Cityscapes training size
    python tools/benchmark_losses.py --sizes seg19,19x16x128x256,1000x512 --repeats 20
    python tools/benchmark_losses.py --device cuda --launch-sweep 1024x4 2048x4 4096x8   # Triton tile x warps
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gdkd_seg.losses import cpu_kernel, gdkd_loss, triton_kernel  # noqa: E402

PRESETS = {
    'seg19b2': ('seg C=19, B=2, 64x128', (2, 19, 64, 128)),
    'seg19': ('seg C=19, B=8, 64x128', (8, 19, 64, 128)),
    'seg150': ('seg C=150, B=8, 64x64', (8, 150, 64, 64)),
    'cls1000': ('cls C=1000, N=512', (512, 1000)),
    'city': ('Cityscapes train C=19, B=16, 128x256', (16, 19, 128, 256)),
}
DEFAULT_SIZES = {'cpu': 'seg19,seg150,cls1000', 'cuda': 'seg19b2,seg19,seg150,cls1000,city'}


def naive_gdkd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, k: int = 3, w0: float = 1.0,
               w1: float = 1.0, w2: float = 2.0, temperature: float = 1.0) -> torch.Tensor:
    """GDKD the way reference code usually writes it (DKD/GDKD authors' style).

    Boolean top-k masks; the two group probabilities are summed from the softmax and logged; the within-group
    distributions are log-softmaxes with the other group pushed down by subtracting 1000.
    """
    T = temperature
    C = student_logits.shape[1]
    if student_logits.dim() == 4:
        student_logits = student_logits.permute(0, 2, 3, 1).reshape(-1, C)
        teacher_logits = teacher_logits.permute(0, 2, 3, 1).reshape(-1, C)
    top_mask = torch.zeros_like(teacher_logits, dtype=torch.bool).scatter_(
        1, teacher_logits.topk(k, dim=1).indices, True)
    other_mask = ~top_mask
    p_student = F.softmax(student_logits / T, dim=1)
    p_teacher = F.softmax(teacher_logits / T, dim=1)
    b_student = torch.stack([(p_student * top_mask).sum(1), (p_student * other_mask).sum(1)], dim=1)
    b_teacher = torch.stack([(p_teacher * top_mask).sum(1), (p_teacher * other_mask).sum(1)], dim=1)
    kl_mass = F.kl_div(torch.log(b_student), b_teacher, reduction='none').sum(1)
    log_top_student = F.log_softmax(student_logits / T - 1000.0 * other_mask, dim=1)
    log_top_teacher = F.log_softmax(teacher_logits / T - 1000.0 * other_mask, dim=1)
    kl_top = F.kl_div(log_top_student, log_top_teacher, reduction='none', log_target=True).sum(1)
    log_other_student = F.log_softmax(student_logits / T - 1000.0 * top_mask, dim=1)
    log_other_teacher = F.log_softmax(teacher_logits / T - 1000.0 * top_mask, dim=1)
    kl_other = F.kl_div(log_other_student, log_other_teacher, reduction='none', log_target=True).sum(1)
    return T ** 2 * (w0 * kl_mass + w1 * kl_top + w2 * kl_other).mean()


def ours_gdkd(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    return gdkd_loss(student_logits, teacher_logits, None, k=3, w0=1.0, w1=1.0, w2=2.0, temperature=1.0)[0]


def ours_pytorch_gdkd(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    with cpu_kernel.switched_off(), triton_kernel.switched_off():
        return ours_gdkd(student_logits, teacher_logits)


def variants() -> List[Tuple[str, Callable]]:
    return [('ours', ours_gdkd), ('ours-pytorch', ours_pytorch_gdkd), ('naive', naive_gdkd)]


def parse_launch(spec: str) -> Tuple[int, int]:
    """``TILExWARPS`` for --launch-sweep."""
    try:
        tile, warps = (int(part) for part in spec.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'--launch-sweep: {spec!r} is not TILExWARPS, e.g. 2048x4') from None
    return tile, warps


def launch_sweep(launches: List[Tuple[int, int]], sizes, device: str, repeats: int, warmup: int) -> None:
    """Time ``ours`` (the Triton kernel) under each tile size and warp count: the table that set LAUNCH."""
    default = dict(triton_kernel.LAUNCH)
    print('\n## Triton launch sweep (ours ms, forward+backward, median)\n')
    print('| size | ' + ' | '.join(f'tile {t}, {w} warps' for t, w in launches) + ' |')
    print('|' + '|'.join(['---'] * (len(launches) + 1)) + '|')
    try:
        for label, shape in sizes:
            student, teacher = make_inputs(shape, 1.0, device)
            row = []
            for tile, warps in launches:
                triton_kernel.LAUNCH.update(tile=tile, num_warps=warps)
                row.append(time_ms([('ours', ours_gdkd)], student, teacher, device, repeats, warmup)['ours'])
            print(f'| {label} | ' + ' | '.join(f'{ms:.3f}' for ms in row) + ' |', flush=True)
    finally:
        triton_kernel.LAUNCH.update(default)


def parse_size(spec: str) -> Tuple[str, Tuple[int, ...]]:
    """A preset name, ``CxBxHxW`` (segmentation logits (B, C, H, W)) or ``CxN`` (classification logits (N, C))."""
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
    raise argparse.ArgumentTypeError(f'--sizes: {spec!r} is neither a preset ({", ".join(PRESETS)}) nor CxBxHxW '
                                     f'nor CxN')


def make_inputs(shape, scale: float, device: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    student = (torch.randn(shape, generator=g) * scale).to(device).requires_grad_()
    teacher = (torch.randn(shape, generator=g) * scale).to(device)
    return student, teacher


def sync(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


def step(fn: Callable, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    student.grad = None
    loss = fn(student, teacher)
    loss.backward()
    return loss.detach()


def time_ms(variants, student, teacher, device: str, repeats: int, warmup: int) -> Dict[str, float]:
    """Median forward+backward time per variant. The variants alternate run by run, so that a slow phase of a
    shared machine hits both alike."""
    for _ in range(warmup):
        for _, fn in variants:
            step(fn, student, teacher)
    sync(device)
    times: Dict[str, List[float]] = {name: [] for name, _ in variants}
    for _ in range(repeats):
        for name, fn in variants:
            start = time.perf_counter()
            step(fn, student, teacher)
            sync(device)
            times[name].append(time.perf_counter() - start)
    student.grad = None
    return {name: 1e3 * statistics.median(ts) for name, ts in times.items()}


def peak_extra_bytes(fn: Callable, student, teacher, device: str) -> int:
    """Peak tensor memory allocated during one forward+backward beyond what existed before it."""
    student.grad = None
    if device == 'cuda':
        sync(device)
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step(fn, student, teacher)
        sync(device)
        return torch.cuda.max_memory_allocated() - before
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step(fn, student, teacher)
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


def finite_on_confident(fn: Callable, shape, device: str) -> bool:
    student, teacher = make_inputs(shape, 50.0, device, seed=1)
    loss = step(fn, student, teacher)
    return bool(torch.isfinite(loss)) and bool(torch.isfinite(student.grad).all())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--repeats', type=int, default=10, help='timed runs per variant (median reported)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed runs before timing')
    parser.add_argument('--sizes', default=None,
                        help='comma-separated presets (' + ', '.join(PRESETS) + '), CxBxHxW or CxN; default: '
                        + '; '.join(f'{d}: {s}' for d, s in DEFAULT_SIZES.items()))
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads on CPU')
    parser.add_argument('--launch-sweep', type=parse_launch, nargs='+', metavar='TILExWARPS',
                        help='on CUDA, also time the Triton kernel at these tile sizes and warp counts')
    args = parser.parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: CUDA is not available')
    if args.repeats < 1:
        parser.error('--repeats must be >= 1')
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [parse_size(s.strip()) for s in (args.sizes or DEFAULT_SIZES[args.device]).split(',') if s.strip()]

    device_name = torch.cuda.get_device_name() if args.device == 'cuda' else f'CPU, {torch.get_num_threads()} threads'
    memory_method = ('torch.cuda.max_memory_allocated minus allocated before the call' if args.device == 'cuda' else
                     'PyTorch profiler allocator events (profile_memory=True): peak of the running sum of tensor '
                     'allocations/frees during the call')
    runs = variants()
    if args.device == 'cpu':
        lib = cpu_kernel.library()
        kernel = f'fused C kernel {lib._name}' if lib is not None else 'NOT BUILT (ours = ours-pytorch)'
    elif triton_kernel.available():
        import triton
        kernel = f'fused Triton kernel (triton {triton.__version__}, launch {triton_kernel.LAUNCH})'
    else:
        kernel = 'Triton NOT AVAILABLE (ours = ours-pytorch)'
    print('# GDKD loss benchmark: ours (gdkd_seg.losses.gdkd_loss) vs naive (probabilities summed and logged, '
          '-1000 masks)\n')
    print(f'- device: {device_name}; torch {torch.__version__}; float32 logits; GDKD k=3, w=(1, 1, 2), T=1; '
          f'kernel: {kernel}')
    print(f'- time: forward+backward w.r.t. the student, median of {args.repeats} runs after {args.warmup} warm-up, '
          f'the variants alternating' + (f'; load average at start {os.getloadavg()[0]:.2f} '
                                         f'(other processes share the CPU: times are noisy)'
                                         if args.device == 'cpu' and hasattr(os, 'getloadavg') else ''))
    print(f'- peak extra memory: {memory_method}; inputs (student, teacher) not counted, student grad counted')
    print('- ms are milliseconds to 3 decimals on CUDA; speed-up and memory ratio: naive / ours; rel diff: |ours - naive| / |naive| on logits ~ N(0, 1); '
          'finite @50: loss and gradient finite on teacher and student logits 50*randn\n')
    names = [name for name, _ in runs]
    header = (['size', 'logits'] + [f'{name} ms' for name in names] + ['speed-up']
              + [f'{name} peak MiB' for name in names] + ['memory ratio', 'rel diff']
              + [f'{name} finite @50' for name in names])
    print('| ' + ' | '.join(header) + ' |')
    print('|' + '|'.join(['---'] * len(header)) + '|')
    for label, shape in sizes:
        student, teacher = make_inputs(shape, 1.0, args.device)
        with torch.no_grad():
            ours_value = ours_gdkd(student, teacher)
            naive_value = naive_gdkd(student, teacher)
        rel_diff = float((ours_value - naive_value).abs() / naive_value.abs())
        ms = time_ms(runs, student, teacher, args.device, args.repeats, args.warmup)
        mem = {name: peak_extra_bytes(fn, student, teacher, args.device) for name, fn in runs}
        finite = {name: finite_on_confident(fn, shape, args.device) for name, fn in runs}
        logits_mib = student.numel() * student.element_size() / 2 ** 20
        digits = 3 if args.device == 'cuda' else 1
        row = ([label, f'{tuple(shape)} {logits_mib:.1f} MiB'] + [f'{ms[name]:.{digits}f}' for name in names]
               + [f'{ms["naive"] / ms["ours"]:.2f}x'] + [f'{mem[name] / 2 ** 20:.1f}' for name in names]
               + [f'{mem["naive"] / max(mem["ours"], 1):.2f}x', f'{rel_diff:.1e}']
               + ['yes' if finite[name] else 'NO' for name in names])
        print('| ' + ' | '.join(row) + ' |', flush=True)
        del student, teacher
    if args.launch_sweep:
        launch_sweep(args.launch_sweep, sizes, args.device, args.repeats, args.warmup)

if __name__ == '__main__':
    main()
