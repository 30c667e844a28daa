"""Evaluate a segmentor, or a distiller's student, with MMSeg's metrics; the flags are MMSeg's ``tools/test.py``'s.

    python tools/test.py CONFIG CHECKPOINT [--out DIR] [--show-dir DIR] [--tta] [--allow-partial]

For a distillation config only the student is built: testing never needs (or downloads) the teacher. A CHECKPOINT
whose weights are not the model's (missing, unexpected or mis-shaped keys) is refused unless ``--allow-partial``.
"""
import argparse
import os

import gdkd_seg  # noqa: F401  (registers the toolkit and applies the stack's compatibility fixes)
from gdkd_seg.checkpoint_loading import loading_for
from gdkd_seg.distributed import init_cpu_distributed
from gdkd_seg.hooks import CheckpointMatchHook
from gdkd_seg.run_config import (add_data_check_arguments, close_process_group, load_run_config,
                                 prepare_run)
from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a segmentor or a distilled student')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save the file containing evaluation metrics')
    parser.add_argument('--out', type=str, help='the directory to save the output prediction files')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='directory where painted images will be saved')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--tta', action='store_true', help='test time augmentation')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument('--allow-partial', action='store_true', default=False,
                        help='evaluate a checkpoint whose weights do not all match the model (missing, unexpected '
                             'or mis-shaped keys), with a warning; refused by default')
    add_data_check_arguments(parser)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg: Config, args: argparse.Namespace) -> Config:
    default_hooks = cfg.default_hooks
    if 'visualization' not in default_hooks:
        raise RuntimeError('VisualizationHook must be included in default_hooks; refer to usage '
                           '"visualization=dict(type=\'VisualizationHook\')"')
    visualization_hook = default_hooks['visualization']
    visualization_hook['draw'] = True
    if args.show:
        visualization_hook['show'] = True
        visualization_hook['wait_time'] = args.wait_time
    if args.show_dir:
        visualizer = cfg.visualizer
        visualizer['save_dir'] = args.show_dir
    return cfg


def build_config(args: argparse.Namespace) -> Config:
    """Load the config and apply the command-line flags the way MMSeg's tools/test.py does."""
    cfg = load_run_config(args.config, args.launcher, args.cfg_options, args.work_dir)
    cfg.load_from = args.checkpoint
    if cfg.model.get('type') in ('SegDistiller', 'ClsDistiller'):
        cfg.model.teacher = None
        cfg.model.teacher_ckpt = None
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.tta:
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out is not None:
        if cfg.get('default_scope') != 'mmseg':
            raise ValueError('--out saves segmentation maps; for classification configs add mmpretrain\'s '
                             "DumpResults metric to test_evaluator instead")
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    return prepare_run(cfg, ('test_dataloader',), args.data_check)


def main() -> None:
    args = parse_args()
    cfg = build_config(args)
    init_cpu_distributed(cfg)  # a no-op unless build_config adapted a distributed run to CPUs
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.register_hook(CheckpointMatchHook(args.checkpoint, allow_partial=args.allow_partial))
    with loading_for('the CHECKPOINT argument (load_from)'):
        runner.test()
    close_process_group()


if __name__ == '__main__':
    main()
