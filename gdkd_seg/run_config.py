"""What ``tools/train.py`` and ``tools/test.py`` do to a config before MMEngine's Runner sees it."""
import argparse
import logging
import os.path as osp
from typing import List, Optional, Sequence

from mmengine.config import Config
from mmengine.logging import print_log

from .checkpoint_saving import remove_stale_temporaries
from .compat import adapt_cpu_distributed, syncbn_to_bn
from .datasets.checks import DATA_CHECK_MODES, check_data_roots, check_dataset_files


def load_run_config(config: str, launcher: str, cfg_options: Optional[dict], work_dir: Optional[str]) -> Config:
    """Load ``config`` and apply the flags MMSeg's tools share: launcher, ``--cfg-options``, ``--work-dir``
    (default ``./work_dirs/<config name>``)."""
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    return cfg


def add_data_check_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data-check {header,full,none}`` and its older spelling ``--skip-data-check`` (= ``none``)."""
    parser.add_argument('--data-check', choices=DATA_CHECK_MODES, default='header',
                        help='pre-flight scan of the dataset files: header (default: image headers, label maps '
                        'decoded for values and sizes), full (also decodes every image, finding truncated ones) '
                        'or none')
    parser.add_argument('--skip-data-check', dest='data_check', action='store_const', const='none',
                        help='same as --data-check none')


def prepare_run(cfg: Config, splits: Sequence[str], data_check: str) -> Config:
    """Fit the config to the processes it runs in and check the data of ``splits`` before anything is built.

    A single process converts SyncBN to BN; a distributed run without CUDA switches to gloo and BN (see
    :func:`gdkd_seg.compat.adapt_cpu_distributed`). Missing dataset folders, and unless ``data_check`` is
    ``'none'`` unreadable or inconsistent files (see :func:`gdkd_seg.datasets.checks.check_dataset_files`), raise
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

    On the main process: removes the half-written checkpoints of saves that died in the checkpoint folders (see
    :func:`gdkd_seg.checkpoint_saving.remove_stale_temporaries`), and warns when ``--resume`` finds no checkpoint to
    resume from. MMEngine then starts from scratch, as a requeued job that had not saved yet needs, logging only
    "resumed from the latest checkpoint None"; a mistyped ``--work-dir`` deserves a line that says so.
    """
    from mmengine.dist import is_main_process
    from mmengine.runner import find_latest_checkpoint
    if not is_main_process():
        return
    remove_stale_temporaries(checkpoint_folders(runner))
    if runner.cfg.get('resume') and runner.cfg.get('load_from') is None and \
            find_latest_checkpoint(runner.work_dir) is None:
        print_log(f'--resume: no checkpoint to resume from in the work dir {osp.abspath(runner.work_dir)!r} (no '
                  "'last_checkpoint' file there); training starts from scratch. If you meant to continue a run, "
                  'check --work-dir', logger='current', level=logging.WARNING)


def close_process_group() -> None:
    """Tear down the process group a distributed run opened before the interpreter exits.

    MMEngine leaves it open; gloo's background threads then abort the process at exit now and then ("terminate
    called without an active exception"), failing a run that had finished its work.
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
