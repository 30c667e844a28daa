"""Import-time fixes that the pinned stack (torch 2.13, MMEngine 0.10.7, MMSeg 1.2.2, mmpretrain 1.2.0) needs.

Each fix is narrow, logged where it changes behaviour, and covered by ``tests/test_compat.py``. Other concerns live
in their own modules: SyncBN and distributed runs on CPUs in :mod:`gdkd_seg.distributed`, safe checkpoint loading in
:mod:`gdkd_seg.checkpoint_loading`, crash-safe saving in :mod:`gdkd_seg.checkpoint_saving`.
"""
import sys
import warnings

import torch
from mmengine.logging import print_log

from .distributed import is_main_process_by_env

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
    if is_main_process_by_env():
        print_log('torchvision compiled ops do not match this torch build; only its Python parts are usable',
                  logger='current', level=30)
