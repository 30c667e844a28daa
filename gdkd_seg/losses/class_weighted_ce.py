"""Cross-entropy with per-class weights that works beside ignored pixels, for MMSeg decode heads."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmseg.models.losses import CrossEntropyLoss
from mmseg.models.losses.cross_entropy_loss import cross_entropy
from mmseg.models.losses.utils import weight_reduce_loss
from mmseg.registry import MODELS
from torch import Tensor

from ..utils.errors import ConfigError


def class_weighted_cross_entropy(pred: Tensor,
                                 label: Tensor,
                                 weight: Optional[Tensor] = None,
                                 class_weight: Optional[Tensor] = None,
                                 reduction: str = 'mean',
                                 avg_factor: Optional[float] = None,
                                 ignore_index: int = -100,
                                 avg_non_ignore: bool = False) -> Tensor:
    """Per-pixel cross-entropy, each pixel weighted by its label's class weight; with ``reduction='mean'`` the
    weighted mean over labelled pixels, sum_i w[y_i] CE_i / sum_i w[y_i] (what ``F.cross_entropy(weight=...)``
    computes), so the weights shift emphasis between classes without changing the loss scale.

    Args:
        pred: Logits (N, C, H, W).
        label: Labels (N, H, W); ``ignore_index`` pixels count neither in the sum nor in the normaliser.
        weight: Optional per-pixel weights (N, H, W), e.g. from an MMSeg pixel sampler.
        class_weight: Weight per class (C,); None falls back to MMSeg's ``cross_entropy`` unchanged.
        reduction: ``'mean'``, ``'sum'`` or ``'none'``.
        avg_factor: Normaliser for ``'mean'``; None: the summed class weights of the labelled pixels.
        ignore_index: Label of pixels to leave out.
        avg_non_ignore: Used only without ``class_weight`` (MMSeg's meaning); with class weights the mean is
            always over labelled pixels.

    Returns:
        The loss: a scalar, or per pixel (N, H, W) for ``reduction='none'``.
    """
    if class_weight is None:
        return cross_entropy(pred, label, weight, None, reduction, avg_factor, ignore_index, avg_non_ignore)
    loss = F.cross_entropy(pred, label, weight=class_weight, reduction='none', ignore_index=ignore_index)
    if avg_factor is None and reduction == 'mean':
        labelled = label != ignore_index
        pixel_weights = torch.zeros_like(loss)
        pixel_weights[labelled] = class_weight[label[labelled]].to(loss.dtype)
        if weight is not None:
            pixel_weights = pixel_weights * weight
        # weight_reduce_loss divides by avg_factor + float32 eps, so a crop of void only gives 0, not 0/0.
        avg_factor = pixel_weights.sum()
    if weight is not None:
        weight = weight.float()
    return weight_reduce_loss(loss, weight=weight, reduction=reduction, avg_factor=avg_factor)


@MODELS.register_module()
class ClassWeightedCrossEntropyLoss(CrossEntropyLoss):
    """MMSeg's ``CrossEntropyLoss`` whose ``class_weight`` works on labels with ignored pixels.

    MMSeg 1.2.2 normalises a class-weighted loss by looking up ``class_weight[label]`` for every pixel, the
    ignored ones (255) included, which raises IndexError on any ignored pixel (and loops over the batch in
    Python). This class computes the same weighted mean over labelled pixels instead (see
    :func:`class_weighted_cross_entropy`). Softmax cross-entropy only; arguments as ``CrossEntropyLoss``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.use_sigmoid or self.use_mask:
            raise ConfigError('ClassWeightedCrossEntropyLoss is softmax cross-entropy: use_sigmoid and use_mask '
                              'must be False (use MMSeg\'s CrossEntropyLoss for those)')
        self.cls_criterion = class_weighted_cross_entropy
