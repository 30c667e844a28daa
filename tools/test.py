"""Evaluate a segmentor, or a distiller's student, with MMSeg's metrics; the flags are MMSeg's ``tools/test.py``'s.

    python tools/test.py CONFIG CHECKPOINT [--out DIR] [--show-dir DIR] [--tta] [--allow-partial]

For a distillation config only the student is built: testing never needs (or downloads) the teacher. A CHECKPOINT
whose weights are not the model's (missing, unexpected or mis-shaped keys) is refused unless ``--allow-partial``.
"""

from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from gdkd_seg.checkpoint.loading import loading_for
from gdkd_seg.engine.cli import ArgumentParser, run_tool
from gdkd_seg.engine.distributed import init_cpu_distributed
from gdkd_seg.engine.hooks import CheckpointMatchHook
from gdkd_seg.engine.runner_setup import (
    add_run_arguments,
    close_process_group,
    load_config,
    log_any_path,
    parse_run_arguments,
    prepare_run,
)
from gdkd_seg.utils.errors import ConfigError

DISTILLERS = ('SegDistiller', 'ClsDistiller')


def parse_args():
    parser = ArgumentParser(description='Test (and evaluate) a segmentor or a distilled student')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', type=str, help='the directory to save the output prediction files')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='directory where painted images will be saved')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--tta', action='store_true', help='test time augmentation')
    parser.add_argument('--allow-partial', action='store_true', default=False,
                        help='evaluate a checkpoint whose weights do not all match the model (missing, unexpected '
                             'or mis-shaped keys), with a warning; refused by default')
    add_run_arguments(parser)
    return parse_run_arguments(parser)


def build_config(args):
    """Load the config and apply the command-line flags the way MMSeg's tools/test.py does."""
    cfg = load_config(args.config, args.cfg_options, args.launcher, args.work_dir)
    cfg.load_from = args.checkpoint
    cfg.resume = False  # testing loads the checkpoint's weights; a config's resume=True would resume training state
    if cfg.model.get('type') in DISTILLERS:
        cfg.model.teacher = None
        cfg.model.teacher_ckpt = None
    if args.show or args.show_dir:
        if 'visualization' not in cfg.default_hooks:
            raise ConfigError("--show / --show-dir need a VisualizationHook in default_hooks: "
                              "visualization=dict(type='VisualizationHook')")
        cfg.default_hooks.visualization.draw = True
        if args.show:
            cfg.default_hooks.visualization.update(show=True, wait_time=args.wait_time)
        if args.show_dir:
            cfg.visualizer.save_dir = args.show_dir
    if args.tta:
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out is not None:
        if cfg.get('default_scope') != 'mmseg':
            raise ConfigError("--out saves segmentation maps; for classification configs add mmpretrain's "
                              'DumpResults metric to test_evaluator instead')
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    return prepare_run(cfg, ('test_dataloader',), args.data_check)


def main() -> None:
    args = parse_args()
    cfg = build_config(args)
    init_cpu_distributed(cfg)  # a no-op unless build_config adapted a distributed run to CPUs
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.register_hook(CheckpointMatchHook(args.allow_partial, 'evaluate it anyway'))
    log_any_path(runner)
    with loading_for('the CHECKPOINT argument (load_from)'):
        runner.test()
    close_process_group()


if __name__ == '__main__':
    run_tool(main)
