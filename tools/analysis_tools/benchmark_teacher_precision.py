"""How much running the teacher in bf16 / fp16 (and channels_last) saves, and how much its logits and the loss move.

    python tools/analysis_tools/benchmark_teacher_precision.py CONFIG [--teacher-ckpt PATH] [--crop H W] [--batch 4]
        [--repeats 10]

Builds the config's SegDistiller once (the teacher with random weights unless --teacher-ckpt is given; the student
at its initial weights) and measures every teacher setting on one batch: :mod:`gdkd_seg.benchmark.teacher_precision`.
"""
import torch
from mmengine.config import DictAction
from mmengine.registry import init_default_scope

from gdkd_seg.benchmark.distiller import build_seg_distiller
from gdkd_seg.benchmark.teacher_precision import batch_of, precision_table
from gdkd_seg.engine.cli import ArgumentParser, run_tool
from gdkd_seg.engine.runner_setup import load_config


def main() -> None:
    parser = ArgumentParser(description='Teacher precision: speed and change of the logits and the loss')
    parser.add_argument('config')
    parser.add_argument('--teacher-ckpt', help='real teacher weights (default: random weights)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--crop', type=int, nargs=2, metavar=('H', 'W'),
                        help="random inputs' size (default: the config's crop)")
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--random-inputs', action='store_true',
                        help="N(0, 1) images even when the config's training data exists")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    distiller = build_seg_distiller(cfg, args.device, args.teacher_ckpt).eval()
    inputs, samples, source = batch_of(cfg, distiller, args.batch, args.device, args.random_inputs, args.crop)
    print(f'config: {args.config}\nteacher: {args.teacher_ckpt or "random weights"}\ndevice: {args.device}; '
          f'inputs: {source}; teacher forward: median of {args.repeats}\n')
    table, summary = precision_table(distiller, inputs, samples, args.repeats, args.device)
    print(summary + '\n')
    print(table)


if __name__ == '__main__':
    run_tool(main)
