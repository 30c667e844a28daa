"""Benchmark the GDKD loss against the naive GDKD form that reference code typically uses.

    python tools/analysis_tools/benchmark_losses.py                       # CPU, the three default sizes
    python tools/analysis_tools/benchmark_losses.py --device cuda         # adds B=2 and the Cityscapes training size
    python tools/analysis_tools/benchmark_losses.py --sizes seg19,19x16x128x256,1000x512 --repeats 20
    python tools/analysis_tools/benchmark_losses.py --device cuda --launch-sweep 1024x4 2048x4 4096x8

What it measures and how: :mod:`gdkd_seg.benchmark.losses`.
"""
import argparse

import torch

from gdkd_seg.benchmark.losses import DEFAULT_SIZES, PRESETS, launch_sweep, loss_benchmark, parse_size
from gdkd_seg.engine.cli import ArgumentParser, run_tool


def parse_launch(spec: str):
    """``TILExWARPS`` for --launch-sweep."""
    try:
        tile, warps = (int(part) for part in spec.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'--launch-sweep: {spec!r} is not TILExWARPS, e.g. 2048x4') from None
    return tile, warps


def main() -> None:
    parser = ArgumentParser(description='Benchmark the GDKD loss against the naive form')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--repeats', type=int, default=10, help='timed runs per variant (median reported)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed runs before timing')
    parser.add_argument('--sizes', default=None,
                        help='comma-separated presets (' + ', '.join(PRESETS) + '), CxBxHxW or CxN; default: '
                        + '; '.join(f'{d}: {s}' for d, s in DEFAULT_SIZES.items()))
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads on CPU')
    parser.add_argument('--launch-sweep', type=parse_launch, nargs='+', metavar='TILExWARPS',
                        help='on CUDA, also time the Triton kernel at these tile sizes and warp counts')
    args = parser.parse_args()
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: CUDA is not available')
    if args.repeats < 1:
        parser.error('--repeats must be >= 1')
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [parse_size(s.strip()) for s in (args.sizes or DEFAULT_SIZES[args.device]).split(',') if s.strip()]
    for line in loss_benchmark(sizes, args.device, args.repeats, args.warmup):
        print(line, flush=True)
    if args.launch_sweep:
        print('\n' + launch_sweep(args.launch_sweep, sizes, args.device, args.repeats, args.warmup))


if __name__ == '__main__':
    run_tool(main)
