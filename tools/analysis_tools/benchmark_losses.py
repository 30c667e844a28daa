"""Benchmark the GDKD loss against the naive GDKD form that reference code typically uses.

    python tools/analysis_tools/benchmark_losses.py                       # CPU, the three default sizes
    python tools/analysis_tools/benchmark_losses.py --device cuda         # adds label-size, ADE and Cityscapes sizes
    python tools/analysis_tools/benchmark_losses.py --sizes seg19,19x16x128x256,1000x512 --repeats 20
    python tools/analysis_tools/benchmark_losses.py --device cuda --launch-sweep 128x4 256x4 256x8
    python tools/analysis_tools/benchmark_losses.py --sass              # the GPU kernel's sm_90 code, no GPU needed

What it measures and how: :mod:`gdkd_seg.benchmark.losses`; ``--sass``: :mod:`gdkd_seg.benchmark.sass`.
"""
import argparse
from typing import Tuple

import torch

from gdkd_seg.benchmark.losses import (
    DEFAULT_SIZES,
    NAIVE_COMPILED,
    PRESETS,
    launch_sweep,
    loss_benchmark,
    parse_size,
)
from gdkd_seg.benchmark.sass import sass_report
from gdkd_seg.engine.cli import ArgumentParser, run_tool
from gdkd_seg.losses.kernels import gpu


def parse_launch(spec: str) -> Tuple[int, int]:
    """``PIXELSxWARPS`` for --launch-sweep."""
    try:
        pixels, warps = (int(part) for part in spec.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'{spec!r} is not PIXELSxWARPS, e.g. 128x4') from None
    if pixels < 1 or warps < 1:
        raise argparse.ArgumentTypeError(f'{spec!r}: pixels and warps must be >= 1')
    return pixels, warps


def main() -> None:
    parser = ArgumentParser(description='Benchmark the GDKD loss against the naive form')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--repeats', type=int, default=10,
                        help='on CUDA: calls queued back to back a round (GPU time per call from CUDA events); on '
                        'CPU: timed calls of each variant (median reported)')
    parser.add_argument('--rounds', type=int, default=5,
                        help='on CUDA: rounds of --repeats calls a variant, the variants alternating (medians '
                        'reported); unused on CPU')
    parser.add_argument('--warmup', type=int, default=2, help='untimed calls of each variant before timing')
    parser.add_argument('--sizes', default=None,
                        help='comma-separated presets (' + ', '.join(PRESETS) + '), CxBxHxW or CxN; default: '
                        + '; '.join(f'{d}: {s}' for d, s in DEFAULT_SIZES.items()))
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads on CPU')
    parser.add_argument('--compile-naive', action=argparse.BooleanOptionalAction, default=None,
                        help=f'also time torch.compile(naive) as {NAIVE_COMPILED!r}, compiled for each size (a '
                        'failed compile is reported in its cells); default: on for cuda, off for cpu, where '
                        'compiling takes minutes and needs a C++ compiler')
    parser.add_argument('--launch-sweep', type=parse_launch, nargs='+', metavar='PIXELSxWARPS',
                        help='with --device cuda, also time the Triton kernels at these launch settings: pixels a '
                        'program owns and warps a program (gpu.LAUNCH pixels and num_warps), e.g. 128x4 256x4 256x8')
    parser.add_argument('--sass', action='store_true',
                        help='instead of timing, compile the GPU loss kernel for sm_90 (H100/H200; no GPU needed) and '
                        'report its registers, spills and warp-instructions per logit element at C=19, 150, 1000 '
                        'and 8000')
    args = parser.parse_args()
    if args.sass:
        if not gpu.available():
            parser.error('--sass compiles the Triton kernel: install triton (PyTorch\'s CUDA wheels bring it)')
        if gpu.interpreter_on():
            parser.error('--sass compiles the Triton kernel: unset TRITON_INTERPRET')
        for line in sass_report():
            print(line, flush=True)
        return
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: CUDA is not available')
    if args.repeats < 1 or args.rounds < 1:
        parser.error('--repeats and --rounds must be >= 1')
    if args.launch_sweep and args.device != 'cuda':
        parser.error('--launch-sweep times the Triton kernels, which run on CUDA: add --device cuda')
    if args.threads:
        torch.set_num_threads(args.threads)
    compile_naive = args.device == 'cuda' if args.compile_naive is None else args.compile_naive
    sizes = [parse_size(s.strip()) for s in (args.sizes or DEFAULT_SIZES[args.device]).split(',') if s.strip()]
    for line in loss_benchmark(sizes, args.device, args.repeats, args.warmup, args.rounds, compile_naive):
        print(line, flush=True)
    if args.launch_sweep:
        print('\n' + launch_sweep(args.launch_sweep, sizes, args.device, args.repeats, args.warmup, args.rounds))


if __name__ == '__main__':
    run_tool(main)
