"""Train a segmentor or a distiller with MMEngine's Runner; the flags are MMSeg's ``tools/train.py``'s.

    python tools/train.py configs/gdkd/deeplabv3_r101_to_r18_cityscapes.py [--work-dir DIR] [--resume] [--amp]

One run per work dir: a second run started on a work dir that a run holds is refused. ``load_from`` must match the
model (``--allow-partial`` starts from the weights that match, with a warning); ``--resume`` must find a training
checkpoint of the same model and optimizer.
"""
import logging

from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from gdkd_seg.engine.cli import ArgumentParser, run_tool
from gdkd_seg.engine.distributed import init_cpu_distributed, is_main_process_by_env
from gdkd_seg.engine.hooks import CheckpointMatchHook
from gdkd_seg.engine.runner_setup import (
    add_run_arguments,
    check_training_length,
    close_process_group,
    load_config,
    parse_run_arguments,
    prepare_run,
    start_training,
)
from gdkd_seg.engine.work_dir_lock import work_dir_lock
from gdkd_seg.utils.errors import ConfigError


def parse_args():
    parser = ArgumentParser(description='Train a segmentor or a distiller')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--resume', action='store_true', default=False,
                        help='resume from the latest checkpoint in the work_dir automatically')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='enable automatic-mixed-precision training')
    parser.add_argument('--allow-partial', action='store_true', default=False,
                        help='start from a load_from checkpoint whose weights do not all match the model (missing, '
                             'unexpected or mis-shaped keys), with a warning; refused by default')
    add_run_arguments(parser)
    return parse_run_arguments(parser)


def build_config(args):
    """Load the config and apply the command-line flags the way MMSeg's tools/train.py does."""
    cfg = load_config(args.config, args.cfg_options, args.launcher, args.work_dir)
    if args.amp:
        optim_wrapper = cfg.optim_wrapper.type
        if optim_wrapper == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in your config.', logger='current', level=logging.WARNING)
        elif optim_wrapper == 'OptimWrapper':
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
        else:
            raise ConfigError(f'--amp needs the optimizer wrapper type OptimWrapper, got {optim_wrapper}')
    cfg.resume = args.resume
    check_training_length(cfg)
    return prepare_run(cfg, ('train_dataloader', 'val_dataloader'), args.data_check)


def main() -> None:
    args = parse_args()
    cfg = build_config(args)
    with work_dir_lock(cfg.work_dir, enabled=is_main_process_by_env()):
        init_cpu_distributed(cfg)  # a no-op unless build_config adapted a distributed run to CPUs
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
        runner.register_hook(CheckpointMatchHook(args.allow_partial, 'start from the weights that match'))
        start_training(runner)
        runner.train()
        close_process_group()


if __name__ == '__main__':
    run_tool(main)
