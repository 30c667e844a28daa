"""Time a distillation step against its parts, and say whether the config's data loader keeps up with it.

    python tools/analysis_tools/benchmark_distill_step.py CONFIG [--crop 256 512] [--batch 2] [--repeats 5]
        [--teacher-precision bf16] [--channels-last] [--data-samples 20 | --skip-data]

Builds the config's SegDistiller (the teacher with random weights unless --teacher-ckpt is given) and prints the
median of --repeats runs after one warm-up of the student step, the teacher forward and the distillation step
(:mod:`gdkd_seg.benchmark.distill_step`), with distill / (student + teacher). Then it times the config's training
data pipeline on this machine (:mod:`gdkd_seg.benchmark.data_throughput`) and says whether the config's num_workers
make a batch within the measured distill step, and how many workers would.
"""
import torch
from mmengine.config import DictAction
from mmengine.registry import init_default_scope

from gdkd_seg.benchmark.data_throughput import data_bound_report, time_pipeline
from gdkd_seg.benchmark.distill_step import step_table, time_distill_step
from gdkd_seg.engine.cli import ArgumentParser, run_tool
from gdkd_seg.engine.runner_setup import load_config
from gdkd_seg.models.frozen_teacher import TEACHER_PRECISIONS


def main() -> None:
    parser = ArgumentParser(description='Time a distillation step against its parts, and the data loader')
    parser.add_argument('config')
    parser.add_argument('--crop', type=int, nargs=2, metavar=('H', 'W'), help="default: the config's crop")
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--teacher-ckpt', help='real teacher weights (default: random weights)')
    parser.add_argument('--teacher-precision', choices=list(TEACHER_PRECISIONS),
                        help="the distiller's teacher_precision (default: the config's)")
    parser.add_argument('--channels-last', action='store_true', help="set the distiller's teacher_channels_last")
    parser.add_argument('--data-samples', type=int, default=20,
                        help='images to time through the training pipeline (default 20)')
    parser.add_argument('--skip-data', action='store_true', help='do not time the data pipeline')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    options = {}
    if args.teacher_precision:
        options['teacher_precision'] = args.teacher_precision
    if args.channels_last:
        options['teacher_channels_last'] = True
    result = time_distill_step(cfg, args.device, args.batch, args.repeats, args.crop, args.teacher_ckpt, options)
    crop = result['crop']
    print(f'config: {args.config}\ndevice: {args.device}, batch {args.batch}, crop {crop[0]}x{crop[1]}, teacher '
          f'{result["teacher_precision"]}{" channels_last" if result["teacher_channels_last"] else ""}, '
          f'median of {args.repeats} runs; distiller built in {result["build"]:.1f} s\n')
    print(step_table(result))
    if not args.skip_data:
        speed = time_pipeline(cfg, args.data_samples)
        print(data_bound_report(speed, args.batch, result['distill'], cfg.train_dataloader.num_workers))


if __name__ == '__main__':
    run_tool(main)
