"""What the tools do to a config before MMEngine's Runner sees it (:func:`load_config`, :func:`prepare_run`), and
to the run once the Runner exists (:func:`start_training`, :func:`close_process_group`)."""
import argparse
import inspect
import logging
import math
import numbers
import os
import os.path as osp
from typing import Any, Iterator, List, Optional, Sequence, Set, Tuple

import torch.distributed as dist
import yaml
from mmengine.config import Config, DictAction
from mmengine.dist import is_main_process
from mmengine.logging import print_log
from mmengine.runner import FlexibleRunner, Runner

from ..checkpoint.saving import find_latest_checkpoint
from ..datasets.checks import DATA_CHECK_MODES, check_data_roots, check_dataset_files
from ..utils.errors import ConfigError, require_extra
from ..utils.files import not_a_regular_file, remove_stale_temporaries
from .distributed import adapt_cpu_distributed, syncbn_to_bn

# Top-level config keys that the run reads once the config file is loaded: the arguments of MMEngine's Runner and
# FlexibleRunner, what MMEngine 0.10.7's Runner reads from its cfg besides, and what the tools read.
_RUNNER_CFG_KEYS = ('model_wrapper_cfg', 'sync_bn', 'find_unused_parameters', 'activation_checkpointing',
                    'efficient_conv_bn_eval', 'compile')
_TOOL_CFG_KEYS = ('runner_type', 'tta_model', 'tta_pipeline')


def _keys_read_by_the_run() -> Set[str]:
    arguments = set(inspect.signature(Runner.__init__).parameters) | set(
        inspect.signature(FlexibleRunner.__init__).parameters)
    return (arguments - {'self', 'cfg'}) | set(_RUNNER_CFG_KEYS) | set(_TOOL_CFG_KEYS)


def _setting_paths(node: Any, name: str, value: Any, prefix: str = '') -> Iterator[Tuple[str, bool]]:
    """Dotted paths below ``node`` of settings called ``name`` (flag True) or holding ``value`` (flag False)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, (list, tuple)) else ()
    for key, child in items:
        path = f'{prefix}{key}'
        if key == name:
            yield path, True
        elif value is not None and not isinstance(value, bool) and type(child) is type(value) and child == value:
            yield path, False
        yield from _setting_paths(child, name, value, path + '.')


def check_cfg_options(cfg: Config, cfg_options: dict) -> None:
    """Refuse a ``--cfg-options`` key whose top-level name nothing in the run reads, which would be ignored silently.

    That is the case for a variable of the config file (``max_iters``, MMSeg's ``norm_cfg`` or ``crop_size``): its
    value was substituted into the settings that use it when the file was read, so overriding it afterwards changes
    nothing. It is also the case for a new name (``teacher_ckpt`` for ``model.teacher_ckpt``).

    Raises:
        ConfigError: naming the key, and the settings to override instead (those of that name below the top level,
            or else those that hold the variable's value).
    """
    read = _keys_read_by_the_run()
    for key in cfg_options:
        name = key.split('.')[0]
        if name in read:
            continue
        value = cfg.get(name)
        paths = list(_setting_paths({k: v for k, v in cfg.items() if k in read}, name, value))
        hints = [path for path, by_name in paths if by_name] or [path for path, _ in paths]
        what = 'a variable of the config file, substituted into the settings that use it when the file was read' \
            if name in cfg else 'no setting of this config'
        instead = f'; override the setting itself, e.g. {", ".join(hints[:4])}' if hints else ''
        raise ConfigError(f'--cfg-options {key}: nothing in the run reads a top-level {name!r} ({what}), so the '
                          f'override would change nothing{instead}')


def load_config(path: str, cfg_options: Optional[dict] = None, launcher: str = 'none',
                work_dir: Optional[str] = None) -> Config:
    """Load a config file and apply the flags MMSeg's tools share.

    Args:
        path: the config file.
        cfg_options: ``--cfg-options``, merged after :func:`check_cfg_options` refused those that would change
            nothing.
        launcher: ``--launcher`` (``'none'``, ``'pytorch'``, ``'slurm'``, ``'mpi'``).
        work_dir: ``--work-dir``; default ``./work_dirs/<config name>`` unless the config sets one.

    Raises:
        ConfigError: the file does not exist, or an option is refused.
        MissingExtraError: a classification config, without mmpretrain installed.
    """
    try:
        kind = not_a_regular_file(path)
    except FileNotFoundError:
        raise ConfigError(f'config {path!r} does not exist') from None
    if kind:
        raise ConfigError(f'config {path!r} is {kind}, not a config file')
    try:
        cfg = Config.fromfile(path)
    except ModuleNotFoundError as err:  # an ``mmpretrain::`` base without mmpretrain
        if 'mmpretrain' in str(err):
            require_extra('mmpretrain', 'cls', f'{path} (a classification config)')
        raise
    except yaml.YAMLError as err:  # gdkd_seg.engine.patches reads YAML as plain data
        raise ConfigError(f'{path}: cannot read the config or a YAML _base_ of it ({" ".join(str(err).split())}). '
                          'YAML configs are read as plain data: tags such as !!python/object are refused and nothing '
                          'in them runs; write the value as plain data, or use a Python config') from err
    if cfg.get('default_scope') == 'mmpretrain':
        require_extra('mmpretrain', 'cls', f'{path} (a classification config)')
    cfg.launcher = launcher
    if cfg_options is not None:
        check_cfg_options(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)
    check_finite_numbers(cfg)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg


def _numbers(node: Any, prefix: str = '') -> Iterator[Tuple[str, Any]]:
    """``(dotted path, value)`` of every real number below ``node`` (dicts, lists, tuples)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, (list, tuple)) else ()
    for key, child in items:
        if isinstance(child, numbers.Real) and not isinstance(child, bool):
            yield f'{prefix}{key}', child
        else:
            yield from _numbers(child, f'{prefix}{key}.')


def check_finite_numbers(cfg: Config) -> None:
    """Refuse a NaN or an infinity anywhere in the config, as written or through ``--cfg-options``.

    No setting means anything by them, and they fail silently: a check such as ``weight > 0`` is False for NaN
    (``model.aux_distill_weight=nan`` would turn auxiliary distillation off), and an infinite weight surfaces only
    as a non-finite loss at the first iteration.

    Raises:
        ConfigError: naming the first such setting.
    """
    for path, value in _numbers(dict(cfg.items())):
        if not math.isfinite(value):
            raise ConfigError(f'{path}={value}: settings must be finite numbers (NaN and infinity mean nothing to '
                              'any setting and would be ignored or fail later); give a finite value')


def check_training_length(cfg: Config) -> None:
    """Refuse a training loop of no iterations (``train_cfg.max_iters`` or ``max_epochs`` below 1), which would end
    at once, with no checkpoint and no word.

    Raises:
        ConfigError: naming the setting.
    """
    train_cfg = cfg.get('train_cfg') or {}
    for key in ('max_iters', 'max_epochs'):
        value = train_cfg.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f'train_cfg.{key}={value!r}: training needs a whole number >= 1 of '
                              f'{key[4:]}; set --cfg-options train_cfg.{key}=N')


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags ``tools/train.py`` and ``tools/test.py`` share, as MMSeg's tools spell them: ``--work-dir``,
    ``--cfg-options``, ``--launcher``, ``--local_rank``, and the pre-flight data check ``--data-check
    {header,full,none}`` (``--skip-data-check`` is ``none``)."""
    parser.add_argument('--work-dir', help='the folder for logs, checkpoints and metrics (default: '
                        './work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, e.g. model.distill_losses.loss_gdkd.k=4')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    # torchrun passes LOCAL_RANK in the environment; other launchers pass --local_rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument('--data-check', choices=DATA_CHECK_MODES, default='header',
                        help='pre-flight scan of the dataset files: header (default: image headers, label maps '
                        'decoded for values and sizes), full (also decodes every image, finding truncated ones) '
                        'or none')
    parser.add_argument('--skip-data-check', dest='data_check', action='store_const', const='none',
                        help='same as --data-check none')


def parse_run_arguments(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the command line of a tool with :func:`add_run_arguments`; ``LOCAL_RANK`` is set from
    ``--local_rank`` when the launcher did not set it (MMEngine reads it)."""
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def prepare_run(cfg: Config, splits: Sequence[str], data_check: str) -> Config:
    """Fit the config to the processes it runs in and check the data of ``splits`` before anything is built.

    A single process converts SyncBN to BN; a distributed run without CUDA switches to gloo and BN (see
    :func:`gdkd_seg.engine.distributed.adapt_cpu_distributed`). Missing dataset folders, and unless ``data_check``
    is ``'none'`` unreadable or inconsistent files (see :func:`gdkd_seg.datasets.checks.check_dataset_files`), raise
    with the path.
    """
    if cfg.launcher == 'none':
        syncbn_to_bn(cfg.model)
    else:
        adapt_cpu_distributed(cfg)
    check_data_roots(cfg, splits=splits)
    if data_check != 'none':
        check_dataset_files(cfg, splits=splits, mode=data_check)
    return cfg


def checkpoint_folders(runner) -> List[str]:
    """The local folders ``runner`` saves checkpoints to: its work dir, and the ``CheckpointHook``'s ``out_dir``
    (where MMEngine puts them in a sub-folder named after the work dir) when one is set."""
    folders = [runner.work_dir]
    out_dir = ((runner.cfg.get('default_hooks') or {}).get('checkpoint') or {}).get('out_dir')
    if out_dir and '://' not in out_dir:
        folders.append(osp.join(out_dir, osp.basename(osp.normpath(runner.work_dir))))
    return folders


def start_training(runner) -> None:
    """What ``tools/train.py`` does once the Runner (and so the log file) exists, before training starts.

    Lets the log files take any path (:func:`log_any_path`). On the main process: removes the half-written
    checkpoints of saves that died in the checkpoint folders (see
    :func:`gdkd_seg.utils.files.remove_stale_temporaries`), and warns when ``--resume`` finds no checkpoint to
    resume from. MMEngine then starts from scratch, as a requeued job that had not saved yet needs, logging only
    "resumed from the latest checkpoint None"; a mistyped ``--work-dir`` deserves a line that says so.
    """
    log_any_path(runner)
    if not is_main_process():
        return
    remove_stale_temporaries(checkpoint_folders(runner))
    if runner.cfg.get('resume') and runner.cfg.get('load_from') is None and \
            find_latest_checkpoint(runner.work_dir) is None:
        print_log(f'--resume: no checkpoint to resume from in the work dir {osp.abspath(runner.work_dir)!r} (no '
                  "'last_checkpoint' file there); training starts from scratch. If you meant to continue a run, "
                  'check --work-dir', logger='current', level=logging.WARNING)


def log_any_path(runner) -> None:
    """Let the run's log files take any path: a file or folder name that is not UTF-8 (its bytes escaped as
    ``\\xff``) instead of a "Logging error" that loses the line (Python's file handlers encode strictly)."""
    for handler in runner.logger.handlers:
        if isinstance(handler, logging.FileHandler) and handler.stream is not None:
            handler.stream.reconfigure(errors='backslashreplace')


def close_process_group() -> None:
    """Tear down the process group a distributed run opened before the interpreter exits.

    MMEngine leaves it open; gloo's background threads then abort the process at exit now and then ("terminate
    called without an active exception"), failing a run that had finished its work.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
