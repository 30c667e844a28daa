"""What ``tools/train.py`` and ``tools/test.py`` do to a config before MMEngine's Runner sees it."""
import os.path as osp
from typing import Optional, Sequence

from mmengine.config import Config

from .compat import adapt_cpu_distributed, syncbn_to_bn
from .datasets.checks import check_data_roots, check_dataset_files


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


def prepare_run(cfg: Config, splits: Sequence[str], skip_data_check: bool) -> Config:
    """Fit the config to the processes it runs in and check the data of ``splits`` before anything is built.

    A single process converts SyncBN to BN; a distributed run without CUDA switches to gloo and BN (see
    :func:`gdkd_seg.compat.adapt_cpu_distributed`). Missing dataset folders, and unless ``skip_data_check`` unreadable
    or inconsistent files, raise with the path.
    """
    if cfg.launcher == 'none':
        syncbn_to_bn(cfg.model)
    else:
        adapt_cpu_distributed(cfg)
    check_data_roots(cfg, splits=splits)
    if not skip_data_check:
        check_dataset_files(cfg, splits=splits)
    return cfg


def close_process_group() -> None:
    """Tear down the process group a distributed run opened before the interpreter exits.

    MMEngine leaves it open; gloo's background threads then abort the process at exit now and then ("terminate
    called without an active exception"), failing a run that had finished its work.
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
