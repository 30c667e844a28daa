"""The distillers: ``SegDistiller`` (MMSeg) and ``ClsDistiller`` (mmpretrain, with the ``[cls]`` extra), the frozen
teacher they share (:mod:`.frozen_teacher`), their set of distillation losses (:mod:`.loss_set`) and the heads of a
segmentor (:mod:`.segmentor_heads`)."""
import importlib.util

from ..utils.errors import require_extra
from .frozen_teacher import build_frozen_teacher, load_teacher_weights, teacher_model_config
from .seg_distiller import SegDistiller

__all__ = ['SegDistiller', 'build_frozen_teacher', 'load_teacher_weights', 'teacher_model_config']

if importlib.util.find_spec('mmpretrain') is not None:
    from .cls_distiller import ClsDistiller  # noqa: F401  (registers it in mmpretrain's MODELS)

    __all__.append('ClsDistiller')


def __getattr__(name: str):
    """``ClsDistiller`` without mmpretrain: say which extra installs it."""
    if name == 'ClsDistiller':
        require_extra('mmpretrain', 'cls', 'ClsDistiller')
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
