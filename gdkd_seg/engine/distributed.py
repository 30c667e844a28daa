"""SyncBN and distributed runs where MMEngine expects GPUs: single-process runs and ``--launcher pytorch`` on CPUs."""
import datetime
import os
from typing import Any

import torch
import torch.distributed as dist
from mmengine.logging import print_log

from ..utils.config_tree import replace_types
from ..utils.errors import UserError


class LauncherError(UserError, RuntimeError):
    """A launcher this machine cannot run (``--launcher slurm`` without GPUs)."""


def is_main_process_by_env() -> bool:
    """Rank 0, or no launcher: read from ``RANK`` (set by torchrun), usable before the process group exists."""
    return os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0')) == '0'


def syncbn_to_bn(cfg_node: Any, reason: str = 'single-process run') -> int:
    """Turn every ``SyncBN`` norm config into ``BN`` where torch's ``SyncBatchNorm`` cannot train.

    MMSeg's Cityscapes configs use SyncBN, which needs a process group and (in training) CUDA tensors: tools
    convert it for single-process runs and for distributed runs without CUDA (see :func:`adapt_cpu_distributed`).
    Distributed GPU runs keep it. Logs one line (rank 0 only) and returns the number of converted norm configs.
    """
    count = replace_types(cfg_node, 'SyncBN', 'BN')
    if count and is_main_process_by_env():
        print_log(f'{reason}: converted {count} SyncBN norm configs to BN', logger='current')
    return count


# --- distributed runs on CPUs (gloo) -----------------------------------------------------------------------------

def adapt_cpu_distributed(cfg) -> bool:
    """Let ``--launcher pytorch`` run on a machine without CUDA (CI, laptops); a no-op when CUDA is available.

    MMEngine 0.10.7 assumes GPUs for distributed runs: its ``init_dist`` calls ``torch.cuda.set_device`` (which a
    CPU build of torch lacks), the default backend is NCCL, and its DDP wrapper passes ``device_ids=[LOCAL_RANK]``,
    which DDP refuses for a CPU module. torch's ``SyncBatchNorm`` raises for CPU tensors in training. So, on CPUs:
    the backend becomes gloo (``env_cfg.dist_cfg.backend``), DDP gets ``device_ids=None``, and SyncBN becomes BN
    (batch statistics per process; gradients are still averaged by DDP). Each change is logged once (rank 0).
    :func:`init_cpu_distributed` then opens the process group before the Runner does.

    Returns:
        True when the config was adapted.
    """
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return False
    if cfg.launcher != 'pytorch':
        raise LauncherError(f'--launcher {cfg.launcher} needs CUDA GPUs (MMEngine sets a CUDA device per process); '
                            'on CPUs run tools/train.py through torchrun with --launcher pytorch, or without a '
                            'launcher')
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') != 'gloo':
        if is_main_process_by_env():
            print_log(f'distributed run without CUDA: backend {dist_cfg.get("backend", "nccl")} -> gloo',
                      logger='current')
        dist_cfg['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel', broadcast_buffers=False,
                                                   find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    syncbn_to_bn(cfg.model, reason='distributed run without CUDA (torch\'s SyncBatchNorm trains on GPUs only)')
    return True


def init_cpu_distributed(cfg) -> None:
    """Open the gloo process group from torchrun's environment (``MASTER_ADDR``, ``RANK``, ...) for a config that
    :func:`adapt_cpu_distributed` adapted; MMEngine's Runner then finds it open and keeps it. A no-op for
    non-distributed runs and where CUDA is available (MMEngine's own ``init_dist`` runs then)."""
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available() or dist.is_initialized():
        return
    dist_cfg = dict(cfg['env_cfg']['dist_cfg'])
    backend = dist_cfg.pop('backend')
    timeout = dist_cfg.pop('timeout', None)
    if timeout is not None:
        dist_cfg['timeout'] = datetime.timedelta(seconds=timeout)
    dist.init_process_group(backend=backend, **dist_cfg)
