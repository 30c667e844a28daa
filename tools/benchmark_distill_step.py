"""Time a distillation step against its parts, and say whether the config's data loader keeps up with it.

    python tools/benchmark_distill_step.py CONFIG [--crop 256 512] [--batch 2] [--repeats 5]
        [--teacher-precision bf16] [--channels-last] [--data-samples 20 | --skip-data]

Builds the config's SegDistiller (the teacher with random weights unless --teacher-ckpt is given: timing does not
depend on them) and times, in one run and on the same random batch:
  student   the student's plain training step (forward, its own losses, backward, SGD step);
  teacher   the teacher's no-grad forward (decode-head logits) at --teacher-precision, as the distiller runs it;
  distill   the full distillation step (the above plus the distillation losses), as training runs it;
and prints a table with the median of --repeats runs after one warm-up, and distill / (student + teacher).

Then it times the config's training data pipeline on this machine (one worker's images per second: from the
config's data root, or from a toy city generated at the pipeline's image size when that is missing) and says whether
the config's num_workers make a batch within the measured distill step, and how many workers would.
"""
import argparse
import time

import torch

import gdkd_seg  # noqa: F401
from gdkd_seg.benchmark import (build_seg_distiller, crop_size, load_config, median_seconds,
                                random_seg_batch)
from gdkd_seg.data_throughput import data_bound_report, time_pipeline
from gdkd_seg.models.teacher import TEACHER_PRECISIONS
from mmengine.config import DictAction


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Time a distillation step against its parts, and the data loader')
    parser.add_argument('config')
    parser.add_argument('--crop', type=int, nargs=2, metavar=('H', 'W'), help='default: the config\'s crop')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--teacher-ckpt', help='real teacher weights (default: random weights)')
    parser.add_argument('--teacher-precision', choices=list(TEACHER_PRECISIONS),
                        help='the distiller\'s teacher_precision (default: the config\'s)')
    parser.add_argument('--channels-last', action='store_true', help='set the distiller\'s teacher_channels_last')
    parser.add_argument('--data-samples', type=int, default=20,
                        help='images to time through the training pipeline (default 20)')
    parser.add_argument('--skip-data', action='store_true', help='do not time the data pipeline')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    crop = crop_size(cfg, args.crop)
    options = {}
    if args.teacher_precision:
        options['teacher_precision'] = args.teacher_precision
    if args.channels_last:
        options['teacher_channels_last'] = True
    started = time.perf_counter()
    distiller = build_seg_distiller(cfg, args.device, args.teacher_ckpt, options)
    build_seconds = time.perf_counter() - started
    student = distiller.student
    optimizer = torch.optim.SGD(student.parameters(), lr=1e-4, momentum=0.9)
    inputs, samples = random_seg_batch(args.batch, crop, student.num_classes, args.device)

    def train_step(losses_of) -> None:
        optimizer.zero_grad()
        sum(value for key, value in losses_of(inputs, samples).items() if 'loss' in key).backward()
        optimizer.step()

    seconds = {
        'student': median_seconds(lambda: train_step(student.loss), args.repeats, args.device),
        'teacher': median_seconds(lambda: distiller.teacher_logits(inputs), args.repeats, args.device),
    }
    if torch.device(args.device).type == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    seconds['distill'] = median_seconds(lambda: train_step(distiller.loss), args.repeats, args.device)
    ratio = seconds['distill'] / (seconds['student'] + seconds['teacher'])
    print(f'config: {args.config}\ndevice: {args.device}, batch {args.batch}, crop {crop[0]}x{crop[1]}, teacher '
          f'{distiller.teacher_precision}{" channels_last" if distiller.teacher_channels_last else ""}, '
          f'median of {args.repeats} runs; distiller built in {build_seconds:.1f} s\n')
    print('| step | ms |\n|---|---|')
    for name, value in seconds.items():
        print(f'| {name} | {value * 1000:.1f} |')
    print(f'| distill / (student + teacher) | {ratio:.3f} |')
    if torch.device(args.device).type == 'cuda':
        print(f'| distill step peak memory (MiB) | {torch.cuda.max_memory_allocated() / 2 ** 20:.0f} |')
    if not args.skip_data:
        speed = time_pipeline(cfg, args.data_samples)
        print('\n' + data_bound_report(speed, args.batch, seconds['distill'], cfg.train_dataloader.num_workers))


if __name__ == '__main__':
    main()
