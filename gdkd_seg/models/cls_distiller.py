"""ClsDistiller: a trainable mmpretrain classifier distilled from a frozen mmpretrain classifier."""
import inspect
import math
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.utils import is_list_of
from mmpretrain.models.classifiers.base import BaseClassifier
from mmpretrain.models.heads import ClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor, nn

from ..losses import DKDLoss
from ..utils.errors import ConfigError
from .frozen_teacher import FrozenTeacherMixin, build_frozen_teacher, teacher_model_config
from .loss_set import build_distill_losses, check_class_options, distill_loss_dict

# Losses that split the classes at the ground-truth label and so need one hard label per image.
LABEL_LOSSES = (DKDLoss,)
# Classification has no ignore label: distillation losses built by ClsDistiller ignore nothing unless told to.
NO_IGNORE_INDEX = -1


def _add_prefix(values: Dict[str, Tensor], prefix: str) -> Dict[str, Tensor]:
    return {f'{prefix}.{key}': value for key, value in values.items()}


def _normalisation(preprocessor: Union[dict, nn.Module], key: str):
    """``mean`` / ``std`` as a list of floats or None (no normalisation), ``to_rgb`` as a bool, from a
    ClsDataPreprocessor config or module."""
    if isinstance(preprocessor, nn.Module):
        value = getattr(preprocessor, key, None) if getattr(preprocessor, '_enable_normalize', True) or \
            key == 'to_rgb' else None
    else:
        value = preprocessor.get(key)
    if key == 'to_rgb':
        return bool(value)
    if isinstance(value, Tensor):
        value = value.flatten().tolist()
    return [float(v) for v in value] if value is not None else None


@MODELS.register_module()
class ClsDistiller(FrozenTeacherMixin, BaseClassifier):
    """Distil a frozen mmpretrain classifier into a trainable mmpretrain classifier on the two heads' logits.

    Training returns the student's own head losses under ``cls.`` (``cls.loss``: mmpretrain names its loss
    ``loss``, which MMEngine also uses for the logged total, so the prefix keeps the total visible in the log) and
    each distillation loss under ``distill.<name>`` with its parts (``distill.gdkd_kl_mass`` ...). ``predict`` and
    ``tensor`` modes run the student alone, so mmpretrain's metrics and val/test loops work unchanged.

    The teacher is held outside the module tree, as in ``SegDistiller``: not in ``state_dict`` (checkpoints hold the
    student only), not in ``parameters()``, never re-initialised, always in eval mode; device moves reach it.

    Labels: the distillation losses get the images' hard labels ``(N,)``. Batch augmentations (Mixup, CutMix, ...
    in the data preprocessor's ``batch_augments``) mix the labels of two images into a soft ``gt_score``; with them
    the losses get ``gt=None``. GDKD and KD partition the classes by the teacher's logits and use ``gt`` only to
    leave out ignored samples, of which classification has none, so they are unchanged by this. DKD splits the
    classes at the ground-truth label, which a mixed image does not have: a DKD loss together with batch
    augmentations is refused when the distiller is built.

    Args:
        student: mmpretrain classifier config (an ``ImageClassifier`` whose head derives from ``ClsHead`` and keeps
            its ``loss``: ``LinearClsHead``, ``VisionTransformerClsHead``, ...). Its ``train_cfg`` (batch augments)
            moves to the distiller's data preprocessor, as ``ImageClassifier`` does with its own.
        teacher: mmpretrain classifier config, inline or as a config path (``mmpretrain::...`` or a file).
            ``None`` builds the student alone, for evaluation.
        teacher_ckpt: local path or URL of the teacher's weights; required when ``teacher`` is given.
        distill_losses: ``name -> loss config`` of registered losses (``GDKDLoss``, ``DKDLoss``, ``KDLoss``, ...),
            applied to the student's and teacher's logits ``(N, C)``. Names must start with ``loss``. Losses that
            take an ``ignore_index`` get ``-1`` (nothing ignored) unless it is set; a value that is one of the
            classes is refused, since the images of that class would silently drop out of the loss.
        data_preprocessor: defaults to the student's, then to mmpretrain's ``ClsDataPreprocessor``; MMEngine's
            Runner passes the config's top-level ``data_preprocessor`` here. The teacher sees the same inputs, so
            its normalisation must match.
        teacher_precision: ``'fp32'`` (default), ``'bf16'`` or ``'fp16'``: the teacher's forward runs under
            ``torch.autocast`` at that precision (faster on GPUs; the losses still get float32 logits).
        teacher_channels_last: convert the teacher's weights, once, and its inputs to channels_last (faster
            convolutions on GPUs with tensor cores, mostly with bf16 / fp16).
        init_cfg: MMEngine init config of the distiller.
    """

    def __init__(self, student: dict, teacher: Union[dict, str, None] = None, teacher_ckpt: Optional[str] = None,
                 distill_losses: Optional[Dict[str, dict]] = None, teacher_precision: str = 'fp32',
                 teacher_channels_last: bool = False, data_preprocessor: Union[dict, nn.Module, None] = None,
                 init_cfg: Optional[dict] = None) -> None:
        student = dict(student)
        student_preprocessor = student.pop('data_preprocessor', None)
        student_batch_augments = student.pop('train_cfg', None)
        if data_preprocessor is None:
            data_preprocessor = student_preprocessor if student_preprocessor is not None else {}
        if isinstance(data_preprocessor, dict):
            data_preprocessor = dict(data_preprocessor)
            data_preprocessor.setdefault('type', 'ClsDataPreprocessor')
            data_preprocessor.setdefault('batch_augments', student_batch_augments)
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.student = MODELS.build(student)
        self._check_student_head()

        num_classes = getattr(self.student.head, 'num_classes', None)
        self.distill_losses = build_distill_losses(self._without_ignore_index(distill_losses, num_classes), MODELS)
        if num_classes is not None:
            check_class_options(self.distill_losses, num_classes)
        # set by DistillWarmupHook; multiplies every distillation loss
        self.distill_weight_factor = 1.0
        self._check_batch_augments()

        # checks the options before the (slow, maybe downloading) teacher build
        self.set_teacher(None, teacher_precision, teacher_channels_last)
        if teacher is not None:
            teacher_cfg = teacher_model_config(teacher)
            self._check_teacher_config(teacher_cfg, teacher_cfg.get('data_preprocessor') or {}, num_classes)
            teacher_cfg.pop('data_preprocessor', None)
            teacher_cfg.pop('train_cfg', None)
            self.set_teacher(build_frozen_teacher(teacher_cfg, teacher_ckpt, MODELS), teacher_precision,
                             teacher_channels_last)

    # ----------------------------------------------------------------------------------------------------------
    # build-time checks
    # ----------------------------------------------------------------------------------------------------------
    def _check_student_head(self) -> None:
        head = getattr(self.student, 'head', None)
        if not isinstance(head, ClsHead) or type(head).loss is not ClsHead.loss:
            raise NotImplementedError(
                f'ClsDistiller needs a single-label student head derived from ClsHead whose loss is its forward '
                f'followed by _get_loss (LinearClsHead, VisionTransformerClsHead, ...); got '
                f'{type(head).__name__}')

    @staticmethod
    def _without_ignore_index(distill_losses: Optional[Dict[str, dict]],
                              num_classes: Optional[int]) -> Dict[str, dict]:
        """Loss configs with ``ignore_index=-1`` where the loss takes one and none is set."""
        configs = {}
        for name, cfg in (distill_losses or {}).items():
            cfg = dict(cfg)
            loss_type = cfg.get('type')
            loss_class = MODELS.get(loss_type) if isinstance(loss_type, str) else loss_type
            if loss_class is not None and 'ignore_index' in inspect.signature(loss_class).parameters:
                ignore_index = cfg.setdefault('ignore_index', NO_IGNORE_INDEX)
                if num_classes is not None and 0 <= ignore_index < num_classes:
                    raise ConfigError(
                        f'distill_losses.{name}.ignore_index={ignore_index} is one of the student\'s {num_classes} '
                        'classes: images of that class would be left out of the distillation loss. '
                        'Classification has no ignore label; leave ignore_index unset')
            configs[name] = cfg
        return configs

    def _check_batch_augments(self) -> None:
        batch_augments = getattr(self.data_preprocessor, 'batch_augments', None)
        label_losses = [name for name, loss in self.distill_losses.items() if isinstance(loss, LABEL_LOSSES)]
        if batch_augments is not None and label_losses:
            augments = [type(aug).__name__ for aug in getattr(batch_augments, 'augments', []) if aug is not None]
            raise ConfigError(
                f'distill_losses {label_losses} (DKD) split the classes at each image\'s ground-truth label, but the '
                f'data preprocessor\'s batch_augments {augments or batch_augments} mix the labels of two images '
                'into a soft gt_score, so there is no single label to split at. Remove the batch augments '
                '(data_preprocessor.batch_augments, or model.student.train_cfg) or use GDKDLoss / KDLoss, which '
                "partition the classes by the teacher's logits and need no label")

    def _check_teacher_config(self, teacher_cfg: dict, teacher_preprocessor: dict,
                              num_classes: Optional[int]) -> None:
        teacher_classes = (teacher_cfg.get('head') or {}).get('num_classes')
        if teacher_classes != num_classes:
            raise ConfigError(f'teacher head.num_classes={teacher_classes} but student has {num_classes}; '
                              'teacher and student must predict the same classes')
        if not teacher_preprocessor:  # an inline teacher without one: nothing to compare
            return
        for key in ('mean', 'std', 'to_rgb'):
            ours, theirs = _normalisation(self.data_preprocessor, key), _normalisation(teacher_preprocessor, key)
            if isinstance(ours, list) and isinstance(theirs, list):  # the buffers are float32
                same = len(ours) == len(theirs) and all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(ours, theirs))
            else:
                same = ours == theirs
            if not same:
                raise ConfigError(f'teacher data_preprocessor.{key}={theirs} differs from the distiller\'s {ours}; '
                                  'the teacher sees the same inputs')

    # the student's parts, for tools that look at a classifier's backbone, neck or head
    @property
    def backbone(self) -> nn.Module:
        return self.student.backbone

    @property
    def neck(self) -> Optional[nn.Module]:
        return self.student.neck

    @property
    def head(self) -> Optional[nn.Module]:
        return self.student.head

    # ----------------------------------------------------------------------------------------------------------
    # forward
    # ----------------------------------------------------------------------------------------------------------
    def forward(self, inputs: Tensor, data_samples: Optional[List[DataSample]] = None, mode: str = 'tensor'):
        if mode == 'tensor':
            return self.student(inputs, mode='tensor')
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}".')

    def extract_feat(self, inputs: Tensor, stage: str = 'neck'):
        return self.student.extract_feat(inputs, stage=stage)

    def loss(self, inputs: Tensor, data_samples: List[DataSample]) -> Dict[str, Tensor]:
        """The student's head losses (under ``cls.``) plus the distillation losses and their parts."""
        if self.teacher is None:
            raise RuntimeError('ClsDistiller was built without a teacher (evaluation only) and cannot train')
        # ImageClassifier.loss is head.loss(feats) = head._get_loss(head(feats)); the logits are needed here too
        student_logits = self._logits(self.student.head(self.student.extract_feat(inputs)), 'student')
        losses = _add_prefix(self.student.head._get_loss(student_logits, data_samples), 'cls')
        teacher_logits = self.teacher_logits(inputs)
        losses.update(distill_loss_dict(self.distill_losses, student_logits, teacher_logits,
                                        self._distill_labels(data_samples), 'distill', self.distill_weight_factor))
        return losses

    def teacher_logits(self, inputs: Tensor) -> Tensor:
        """The teacher's logits ``(N, num_classes)``: float32, computed without gradients at ``teacher_precision``."""
        logits, = self.teacher_outputs(
            lambda teacher, batch: [self._logits(teacher.head(teacher.extract_feat(batch)), 'teacher')], inputs)
        return logits

    @staticmethod
    def _logits(output, who: str) -> Tensor:
        if not isinstance(output, Tensor) or output.dim() != 2:
            shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
            raise TypeError(f"the {who}'s head must return logits (N, num_classes) in training, got {shape}")
        return output

    def _distill_labels(self, data_samples: Sequence[DataSample]) -> Optional[Tensor]:
        """The hard labels ``(N,)``, or None when batch augments mixed them (GDKD and KD then need none)."""
        if getattr(self.data_preprocessor, 'batch_augments', None) is not None:
            return None
        labels = [sample.gt_label for sample in data_samples if 'gt_label' in sample]
        if len(labels) == len(data_samples) and is_list_of(labels, Tensor) and all(
                label.numel() == 1 for label in labels):
            return torch.cat([label.reshape(1) for label in labels])
        if any(isinstance(loss, LABEL_LOSSES) for loss in self.distill_losses.values()):
            raise ConfigError('DKD needs exactly one gt_label per image; this batch has images without a label '
                              'or with several (multi-label data)')
        return None

    def predict(self, inputs: Tensor, data_samples: Optional[List[DataSample]] = None,
                **kwargs) -> List[DataSample]:
        """The student's prediction, exactly as mmpretrain's ImageClassifier makes it."""
        return self.student.predict(inputs, data_samples, **kwargs)

    def get_layer_depth(self, param_name: str):
        """Layer-wise depth of a distiller parameter (``student.``-prefixed), for layer-wise lr decay."""
        prefix = 'student.'
        return self.student.get_layer_depth(param_name[len(prefix):] if param_name.startswith(prefix)
                                            else param_name)
