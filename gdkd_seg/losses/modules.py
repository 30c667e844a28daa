"""Registered ``nn.Module`` wrappers of the loss functions, buildable by ``type=`` from MMSeg and mmpretrain configs.

They live in MMEngine's root ``MODELS`` registry, which MMSeg's and mmpretrain's registries fall back to.
Each module keeps the detached parts of its last call in ``parts`` for logging.
"""
from typing import Callable, Dict, Optional

from mmengine.registry import MODELS
from torch import Tensor, nn

from .cwd import cwd_loss
from .dist import check_dist_options, dist_loss
from .gdkd import dkd_loss, gdkd3_loss, gdkd_loss, kd_loss
from .options import check_options


class DistillLoss(nn.Module):
    """``loss_weight × loss_fn(student_logits, teacher_logits, gt, **options)``.

    Every option, ``loss_weight`` and ``loss_name`` are validated here, when the loss is built (see
    :func:`gdkd_seg.losses.options.check_options`); ``k`` against the class count is checked by the distiller,
    which knows it.
    """

    loss_fn: Callable

    def __init__(self, loss_weight: float, loss_name: str, **options) -> None:
        check_options(loss_weight=loss_weight, loss_name=loss_name, **options)
        super().__init__()
        self.loss_weight = loss_weight
        self._loss_name = loss_name
        self.options = options
        self.parts: Dict[str, Tensor] = {}

    @property
    def loss_name(self) -> str:
        """The key of this loss in the log and loss dicts."""
        return self._loss_name

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, gt: Optional[Tensor] = None) -> Tensor:
        """Args: logits ``(B, C, h, w)`` or ``(N, C)``; gt labels or None. Returns: the weighted scalar loss."""
        loss, self.parts = type(self).loss_fn(student_logits, teacher_logits, gt, **self.options)
        return self.loss_weight * loss

    def extra_repr(self) -> str:
        return ', '.join(f'{key}={value}' for key, value in dict(self.options, loss_weight=self.loss_weight).items())


@MODELS.register_module()
class GDKDLoss(DistillLoss):
    """GDKD: ``T²·[w0·KL(b_t‖b_s) + w1·KL within the teacher's top-k + w2·KL within the rest]``.

    Defaults are the authors' segmentation settings. See :func:`gdkd_seg.losses.gdkd_loss` for every argument.
    """

    loss_fn = staticmethod(gdkd_loss)

    def __init__(self, k: int = 3, w0: float = 1.0, w1: float = 1.0, w2: float = 2.0, temperature: float = 1.0,
                 loss_weight: float = 1.0, ignore_index: int = 255, partition: str = 'topk', top_p: float = 0.9,
                 k_max: Optional[int] = None, logit_standardize: bool = False, ignore_incorrect: bool = False,
                 entropy_weight: float = 0.0, mass_clamp: Optional[float] = None,
                 loss_name: str = 'loss_gdkd') -> None:
        super().__init__(loss_weight, loss_name, k=k, w0=w0, w1=w1, w2=w2, temperature=temperature,
                         ignore_index=ignore_index, partition=partition, top_p=top_p, k_max=k_max,
                         logit_standardize=logit_standardize, ignore_incorrect=ignore_incorrect,
                         entropy_weight=entropy_weight, mass_clamp=mass_clamp)


@MODELS.register_module()
class GDKD3Loss(DistillLoss):
    """GDKD with three groups (top-1, top-2..k, rest); see :func:`gdkd_seg.losses.gdkd3_loss`."""

    loss_fn = staticmethod(gdkd3_loss)

    def __init__(self, k: int = 3, w0: float = 1.0, w1: float = 1.0, w2: float = 2.0, temperature: float = 1.0,
                 loss_weight: float = 1.0, ignore_index: int = 255, mass_clamp: Optional[float] = None,
                 loss_name: str = 'loss_gdkd3') -> None:
        super().__init__(loss_weight, loss_name, k=k, w0=w0, w1=w1, w2=w2, temperature=temperature,
                         ignore_index=ignore_index, mass_clamp=mass_clamp)


@MODELS.register_module()
class DKDLoss(DistillLoss):
    """DKD: ground-truth class against the rest; see :func:`gdkd_seg.losses.dkd_loss`."""

    loss_fn = staticmethod(dkd_loss)

    def __init__(self, alpha: float = 1.0, beta: float = 8.0, temperature: float = 1.0, loss_weight: float = 1.0,
                 ignore_index: int = 255, logit_standardize: bool = False, mass_clamp: Optional[float] = None,
                 loss_name: str = 'loss_dkd') -> None:
        super().__init__(loss_weight, loss_name, alpha=alpha, beta=beta, temperature=temperature,
                         ignore_index=ignore_index, logit_standardize=logit_standardize, mass_clamp=mass_clamp)


@MODELS.register_module()
class KDLoss(DistillLoss):
    """Per-pixel KD, ``T²·KL(p_t‖p_s)``; see :func:`gdkd_seg.losses.kd_loss`."""

    loss_fn = staticmethod(kd_loss)

    def __init__(self, temperature: float = 1.0, loss_weight: float = 1.0, ignore_index: int = 255,
                 logit_standardize: bool = False, loss_name: str = 'loss_kd') -> None:
        super().__init__(loss_weight, loss_name, temperature=temperature, ignore_index=ignore_index,
                         logit_standardize=logit_standardize)


@MODELS.register_module()
class DISTLoss(DistillLoss):
    """DIST: ``β·inter-class + γ·intra-class`` Pearson distances of ``softmax(z/T)``; see
    :func:`gdkd_seg.losses.dist_loss` (ignored pixels left out, no T²). Defaults are the authors' Cityscapes
    settings. ``beta=0`` gives the intra-class term alone, as the authors add it to GDKD, DKD and KD."""

    loss_fn = staticmethod(dist_loss)

    def __init__(self, beta: float = 1.0, gamma: float = 1.0, temperature: float = 1.0, per_image_intra: bool = False,
                 loss_weight: float = 1.0, ignore_index: int = 255, loss_name: str = 'loss_dist') -> None:
        check_dist_options(beta, gamma, temperature, per_image_intra, ignore_index)
        super().__init__(loss_weight, loss_name, beta=beta, gamma=gamma, temperature=temperature,
                         per_image_intra=per_image_intra, ignore_index=ignore_index)


@MODELS.register_module()
class CWDLoss(DistillLoss):
    """Channel-wise distillation; see :func:`gdkd_seg.losses.cwd_loss`. Ignores ``gt``."""

    def __init__(self, temperature: float = 1.0, loss_weight: float = 1.0, loss_name: str = 'loss_cwd') -> None:
        super().__init__(loss_weight, loss_name, temperature=temperature)

    @staticmethod
    def loss_fn(student_logits: Tensor, teacher_logits: Tensor, gt: Optional[Tensor], temperature: float):
        return cwd_loss(student_logits, teacher_logits, temperature)
