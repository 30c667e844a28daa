"""Fixes that the pinned stack (torch 2.13, MMEngine 0.10.7, MMSeg 1.2.2, mmpretrain 1.2.0) needs.

Each fix is narrow, logged where it changes behaviour, and covered by ``tests/test_compat.py``.
"""
import sys
import warnings
from typing import Any, Iterable

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log

# Keeps the torchvision op schemas alive for the life of the process.
_TORCHVISION_LIB = None


def silence_pkg_resources_warning() -> None:
    """MMEngine imports ``pkg_resources`` to resolve ``mmseg::`` config paths; setuptools 80 warns on every import.

    The pinned setuptools still ships it (torch 2.13 needs setuptools >= 77, MMEngine needs < 81).
    """
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)


def make_torchvision_importable() -> None:
    """Let torchvision's pure-Python parts import beside a torch build its compiled ops do not match.

    PyPI's torchvision wheels are built against CUDA torch. Beside the CPU build of torch their ``_C`` extension
    cannot load, and torchvision >= 0.2x then fails at import while registering fake kernels for
    ``torchvision::nms``. MMEngine's environment report and mmpretrain import torchvision only for pure-Python
    helpers (box utilities, version strings), so the two op schemas are declared without kernels: torchvision
    imports, and calling ``torchvision.ops.nms`` still fails loudly ("no kernel").
    """
    global _TORCHVISION_LIB
    if 'torchvision' in sys.modules:
        return
    try:
        import torchvision  # noqa: F401
        return
    except ModuleNotFoundError:
        return
    except RuntimeError as err:
        if 'torchvision::nms' not in str(err):
            raise
    for name in [m for m in sys.modules if m == 'torchvision' or m.startswith('torchvision.')]:
        del sys.modules[name]
    _TORCHVISION_LIB = torch.library.Library('torchvision', 'FRAGMENT')
    for op in ('nms', 'qnms'):
        if not hasattr(torch.ops.torchvision, op):
            _TORCHVISION_LIB.define(f'{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
    import torchvision  # noqa: F401,F811
    print_log('torchvision compiled ops do not match this torch build; only its Python parts are usable',
              logger='current', level=30)


def mmengine_checkpoint_types() -> list:
    """The non-tensor globals that MMEngine 0.10.7 pickles into its own checkpoints.

    ``message_hub`` holds :class:`HistoryBuffer` objects (numpy arrays and scalars inside, and their statistics
    methods, pickled as ``getattr(HistoryBuffer, 'mean')``); ``meta`` holds numpy scalars.
    """
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    dtypes = ('float16', 'float32', 'float64', 'int8', 'int16', 'int32', 'int64', 'uint8', 'bool')
    return [HistoryBuffer, getattr, np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar
            ] + [type(np.dtype(name)) for name in dtypes]


def allow_mmengine_checkpoints() -> None:
    """Allow-list exactly :func:`mmengine_checkpoint_types` for ``torch.load(weights_only=True)``.

    torch >= 2.6 loads with ``weights_only=True`` by default and refuses what MMEngine writes, which breaks
    ``--resume``, ``load_from``, ``tools/test.py CONFIG CHECKPOINT`` and teachers trained with MMEngine. Safe loading
    stays on: any other pickled object in any checkpoint is still refused.
    """
    torch.serialization.add_safe_globals(mmengine_checkpoint_types())


def _replace_type(node: Any, old: str, new: str) -> int:
    """Recursively rename ``type=old`` to ``type=new`` in nested dicts/lists; returns how many were renamed."""
    count = 0
    if isinstance(node, dict):
        if node.get('type') == old:
            node['type'] = new
            count += 1
        values: Iterable = node.values()
    elif isinstance(node, (list, tuple)):
        values = node
    else:
        return 0
    for value in values:
        count += _replace_type(value, old, new)
    return count


def syncbn_to_bn(cfg_node: Any) -> int:
    """Turn every ``SyncBN`` norm config into ``BN`` for a single, non-distributed process.

    MMSeg's Cityscapes configs use SyncBN, which cannot run without a process group. Distributed runs keep it.
    Logs one line and returns the number of converted norm configs.
    """
    count = _replace_type(cfg_node, 'SyncBN', 'BN')
    if count:
        print_log(f'single-process run: converted {count} SyncBN norm configs to BN', logger='current')
    return count
