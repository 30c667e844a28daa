"""Shared input handling for the distillation losses: shape checks, resizing, valid-pixel masks, reduction."""
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor


def to_compute_dtype(logits: Tensor) -> Tensor:
    """fp16/bf16 logits are computed in float32 (their range and precision are too small for KL terms);
    float32 and float64 stay as they are."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


# Added to the standard deviation, as in the logit-standardization code of Sun et al. (CVPR 2024) and in GDKD's
# (ZaberKo/GDKD, mdistiller/distillers/experimental/LS_GDKD.py, ``normalize``): a row of equal logits becomes all 0
# (the uniform distribution) instead of 0/0.
STANDARDIZE_EPS = 1e-7


def standardize_logits(logits: Tensor) -> Tensor:
    """Z-score each pixel's (row's) logits over the classes: ``(z − mean) / (1e-7 + std)``.

    The meaning of the logit standardization of Sun et al. (CVPR 2024) and of GDKD's ``LS_GDKD`` (``norm_mode=
    'global'``): the sample standard deviation (Bessel's correction, ``C − 1``, as ``torch.std``), 1e-7 added to
    it, no base temperature (the loss's own temperature divides the standardized logits afterwards). Computed in
    float32 or wider (fp16/bf16 logits are promoted), so the mean and spread of large logits do not round away.

    Args:
        logits: ``(B, C, h, w)`` or ``(N, C)`` with ``C >= 2`` (a single class has no spread).

    Returns:
        The standardized logits in the compute dtype, differentiable (the gradient flows through mean and std).
    """
    if logits.shape[1] < 2:
        raise ValueError(f'logit_standardize needs at least 2 classes to measure a spread, got C={logits.shape[1]}')
    logits = to_compute_dtype(logits)
    std, mean = torch.std_mean(logits, dim=1, keepdim=True, correction=1)
    return (logits - mean) / (std + STANDARDIZE_EPS)


def check_logits(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """Validate a student/teacher logit pair and bring the teacher's to the student's spatial size.

    Args:
        student_logits: ``(B, C, h, w)`` or ``(N, C)``.
        teacher_logits: same layout and class count; spatial size may differ.

    Returns:
        The teacher logits, detached (the teacher is never trained through a distillation loss) and bilinearly
        resized to the student's spatial size when it differs.
    """
    if student_logits.dim() not in (2, 4):
        raise ValueError(f'student_logits must be (B, C, H, W) or (N, C), got shape {tuple(student_logits.shape)}')
    if teacher_logits.dim() != student_logits.dim():
        raise ValueError(f'teacher_logits has shape {tuple(teacher_logits.shape)} but student_logits has shape '
                         f'{tuple(student_logits.shape)}; both must be (B, C, H, W) or both (N, C)')
    if teacher_logits.shape[1] != student_logits.shape[1]:
        raise ValueError(f'student_logits has {student_logits.shape[1]} classes but teacher_logits has '
                         f'{teacher_logits.shape[1]}; teacher and student must predict the same classes')
    if teacher_logits.shape[0] != student_logits.shape[0]:
        raise ValueError(f'student_logits has batch size {student_logits.shape[0]} but teacher_logits has '
                         f'{teacher_logits.shape[0]}')
    teacher_logits = teacher_logits.detach()
    if student_logits.dim() == 4 and teacher_logits.shape[2:] != student_logits.shape[2:]:
        teacher_logits = F.interpolate(teacher_logits, size=student_logits.shape[2:], mode='bilinear',
                                       align_corners=False)
    return teacher_logits


class LabelMap:
    """Ground-truth labels as given, for the pixels of a pair of logits: checked at once, matched to the logits'
    pixels (nearest resize, ``ignore_index`` left out) only when an implementation asks for :attr:`labels` or
    :attr:`valid`. The GPU kernel reads :attr:`gt` as it is and does both itself.

    Args:
        gt: class indices ``(B, H, W)``, ``(B, 1, H, W)`` or ``(N,)``.
        logits: ``(B, C, h, w)`` or ``(N, C)``; ``gt`` is resized (nearest) to ``(h, w)`` when it differs.
        ignore_index: label of pixels left out of the loss.

    Raises:
        ValueError: when ``gt`` does not fit the logits.
    """

    def __init__(self, gt: Tensor, logits: Tensor, ignore_index: int) -> None:
        if logits.dim() == 4:
            if gt.dim() == 4 and gt.shape[1] == 1:
                gt = gt[:, 0]
            if gt.dim() != 3 or gt.shape[0] != logits.shape[0]:
                raise ValueError(f'gt must be (B, H, W) or (B, 1, H, W) with B={logits.shape[0]}, '
                                 f'got shape {tuple(gt.shape)}')
        elif gt.shape != logits.shape[:1]:
            raise ValueError(f'gt must be (N,) with N={logits.shape[0]}, got shape {tuple(gt.shape)}')
        self.gt = gt if not gt.is_floating_point() else gt.long()
        self.ignore_index = ignore_index
        self.pixel_shape = tuple(logits.shape[2:])
        self._matched: Optional[Tuple[Tensor, Tensor]] = None

    def _match(self) -> Tuple[Tensor, Tensor]:
        if self._matched is None:
            gt = self.gt
            if gt.dim() == 3 and tuple(gt.shape[1:]) != self.pixel_shape:
                gt = F.interpolate(gt[:, None].float(), size=self.pixel_shape, mode='nearest')[:, 0]
            gt = gt.long()
            valid = gt != self.ignore_index
            self._matched = gt.masked_fill(~valid, 0), valid
        return self._matched

    @property
    def labels(self) -> Tensor:
        """Labels shaped like the logits without the class dim, ignored pixels set to 0 so they index safely."""
        return self._match()[0]

    @property
    def valid(self) -> Tensor:
        """The boolean mask of pixels whose label is not ``ignore_index``, shaped like :attr:`labels`."""
        return self._match()[1]


def valid_mask(valid: Union[Tensor, LabelMap, None]) -> Optional[Tensor]:
    """The boolean mask of the pixels that count, from a mask (returned as it is) or a :class:`LabelMap`; None for
    all pixels."""
    return valid.valid if isinstance(valid, LabelMap) else valid


def labels_and_valid(gt: Optional[Tensor], logits: Tensor,
                     ignore_index: int) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    """``gt`` matched to the logits' pixels: ``(labels, valid)`` of a :class:`LabelMap`, or ``(None, None)`` when
    ``gt`` is None (all pixels valid)."""
    if gt is None:
        return None, None
    label_map = LabelMap(gt, logits, ignore_index)
    return label_map.labels, label_map.valid


def check_inputs(student_logits: Tensor, teacher_logits: Tensor, gt: Optional[Tensor], ignore_index: int,
                 logit_standardize: bool = False) -> Tuple[Tensor, Tensor, Optional[LabelMap]]:
    """Check a logit pair and its labels: :func:`check_logits` then a :class:`LabelMap`; with
    ``logit_standardize``, :func:`standardize_logits` on both (the teacher's after its resize, so on the student's
    pixels), before any loss implementation sees them.

    Returns:
        ``(student_logits, teacher_logits, labels)``: the teacher's logits resized and detached; the labels (None
        without ``gt``: all pixels valid).
    """
    teacher_logits = check_logits(student_logits, teacher_logits)
    labels = None if gt is None else LabelMap(gt, student_logits, ignore_index)
    if logit_standardize:
        student_logits, teacher_logits = standardize_logits(student_logits), standardize_logits(teacher_logits)
    return student_logits, teacher_logits, labels


def mean_over_valid(per_pixel: Tensor, valid: Optional[Tensor]) -> Tensor:
    """Mean of a per-pixel map over valid pixels; exactly 0 (with a gradient path) when none is valid."""
    if valid is None:
        return per_pixel.mean()
    return torch.where(valid, per_pixel, 0.0).sum() / valid.sum().clamp(min=1)
