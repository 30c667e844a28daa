"""Train a segmentor or a distiller with MMEngine's Runner; the flags are MMSeg's ``tools/train.py``'s.

    python tools/train.py configs/gdkd/deeplabv3_r101_to_r18_cityscapes.py [--work-dir DIR] [--resume] [--amp]
"""
import argparse
import logging
import os

import gdkd_seg  # noqa: F401  (registers the toolkit and applies the stack's compatibility fixes)
from gdkd_seg.distributed import init_cpu_distributed
from gdkd_seg.run_config import (add_data_check_arguments, close_process_group, load_run_config,
                                 prepare_run, start_training)
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a segmentor or a distiller')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--resume', action='store_true', default=False,
                        help='resume from the latest checkpoint in the work_dir automatically')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='enable automatic-mixed-precision training')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, e.g. model.distill_losses.loss_gdkd.k=4')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    # torchrun passes LOCAL_RANK in the environment; older launchers pass --local_rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_data_check_arguments(parser)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_config(args: argparse.Namespace) -> Config:
    """Load the config and apply the command-line flags the way MMSeg's tools/train.py does."""
    cfg = load_run_config(args.config, args.launcher, args.cfg_options, args.work_dir)
    if args.amp:
        optim_wrapper = cfg.optim_wrapper.type
        if optim_wrapper == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in your config.', logger='current', level=logging.WARNING)
        else:
            assert optim_wrapper == 'OptimWrapper', \
                f'`--amp` is only supported when the optimizer wrapper type is `OptimWrapper` but got {optim_wrapper}.'
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    cfg.resume = args.resume
    return prepare_run(cfg, ('train_dataloader', 'val_dataloader'), args.data_check)


def main() -> None:
    cfg = build_config(parse_args())
    init_cpu_distributed(cfg)  # a no-op unless build_config adapted a distributed run to CPUs
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    start_training(runner)
    runner.train()
    close_process_group()


if __name__ == '__main__':
    main()
