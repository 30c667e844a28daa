"""SegDistiller: a trainable MMSeg student distilled from a frozen MMSeg teacher."""
import math
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.utils import OptSampleList, SampleList, add_prefix
from torch import Tensor, nn

from ..utils.errors import ConfigError
from .frozen_teacher import FrozenTeacherMixin, build_frozen_teacher, teacher_model_config
from .loss_set import build_distill_losses, check_class_options, distill_loss_dict
from .segmentor_heads import auxiliary_heads, decode_heads, head_logits, log_names, prediction_head


def _config_num_classes(decode_head: Union[dict, list, None]) -> Optional[int]:
    """``num_classes`` of a decode head config; of the last stage for a cascade's list of stages."""
    if isinstance(decode_head, (list, tuple)):
        decode_head = decode_head[-1] if decode_head else None
    return (decode_head or {}).get('num_classes')


@MODELS.register_module()
class SegDistiller(FrozenTeacherMixin, BaseSegmentor):
    """Distil a frozen MMSeg teacher into a trainable MMSeg student on the student's decode-head logits.

    The teacher is held outside the module tree (:class:`FrozenTeacherMixin`): checkpoints hold the student only
    and the teacher is rebuilt from ``teacher_ckpt``; it is never optimised, re-initialised or put in train mode.

    Student and teacher may be any MMSeg EncoderDecoder (with or without auxiliary heads, one or several) or
    CascadeEncoderDecoder (e.g. OCRNet), of different architectures: the losses compare the prediction logits (a
    cascade's last stage) and resize the teacher's to the student's resolution. Each student head keeps its own
    MMSeg losses; a cascade's earlier stages are trained by those only.

    Args:
        student: MMSeg segmentor config (EncoderDecoder or CascadeEncoderDecoder).
        teacher: MMSeg segmentor config, inline or as a config path (``mmseg::...`` or a file). ``None`` builds the
            student alone, for evaluation (``tools/test.py`` does this: testing never needs the teacher).
        teacher_ckpt: local path or URL of the teacher's weights; required when ``teacher`` is given.
        distill_losses: ``name -> loss config`` of registered losses (``GDKDLoss``, ``KDLoss``, ...), applied to the
            student's and teacher's decode-head logits with the ground truth. Names must start with ``loss``.
        aux_distill_weight: when > 0, the same losses are also applied to each auxiliary head's logits (the i-th
            student head learns from the i-th teacher head), scaled by this weight; student and teacher must then
            have as many auxiliary heads, pairwise predicting the same classes. 0 for a student without one.
        teacher_precision: ``'fp32'`` (default), ``'bf16'`` or ``'fp16'``: the teacher's forward runs under
            ``torch.autocast`` at that precision (faster on GPUs; the losses still get float32 logits). See
            ``docs/performance.md`` ("Teacher precision") for how much the logits and the loss move.
        teacher_channels_last: convert the teacher's weights, once, and its inputs to channels_last (faster
            convolutions on GPUs with tensor cores, mostly with bf16 / fp16).
        data_preprocessor: defaults to the student's. The teacher sees the same preprocessed inputs, so its
            normalisation must match.
        init_cfg: MMEngine init config of the distiller.
        pretrained, train_cfg: only None is accepted (``mmseg.apis.init_model`` sets both); they belong to the
            student.
    """

    def __init__(self, student: dict, teacher: Union[dict, str, None] = None, teacher_ckpt: Optional[str] = None,
                 distill_losses: Optional[Dict[str, dict]] = None, aux_distill_weight: float = 0.0,
                 teacher_precision: str = 'fp32', teacher_channels_last: bool = False,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None,
                 pretrained: Optional[str] = None, train_cfg: Optional[dict] = None) -> None:
        if pretrained is not None or train_cfg is not None:
            raise ConfigError('SegDistiller takes no pretrained or train_cfg of its own; set them in the student '
                              '(the teacher loads teacher_ckpt)')
        student_preprocessor = student.get('data_preprocessor')
        if data_preprocessor is None:
            data_preprocessor = student_preprocessor
        elif student_preprocessor and student_preprocessor.get('size') != data_preprocessor.get('size'):
            # MMEngine's Runner passes the config's top-level data_preprocessor to the distiller
            raise ConfigError(f"the distiller's data_preprocessor.size={data_preprocessor.get('size')} differs from "
                              f"the student's {student_preprocessor.get('size')}; set the config's top-level "
                              'data_preprocessor (which the Runner gives the distiller) to the same size')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        student = dict(student)
        student.pop('data_preprocessor', None)
        self.student = MODELS.build(student)

        self.distill_losses = build_distill_losses(distill_losses, MODELS)
        check_class_options(self.distill_losses, self.student.num_classes)
        self.aux_distill_weight = self._checked_aux_distill_weight(aux_distill_weight)
        # set by DistillWarmupHook; multiplies every distillation loss
        self.distill_weight_factor = 1.0

        # checks the options before the (slow, maybe downloading) teacher build
        self.set_teacher(None, teacher_precision, teacher_channels_last)
        if teacher is not None:
            teacher_cfg = teacher_model_config(teacher)
            self._check_teacher_config(teacher_cfg, data_preprocessor)
            teacher_cfg.pop('data_preprocessor', None)
            self.set_teacher(build_frozen_teacher(teacher_cfg, teacher_ckpt, MODELS), teacher_precision,
                             teacher_channels_last)
            self._check_auxiliary_pairs()

    def _checked_aux_distill_weight(self, weight: float) -> float:
        """``aux_distill_weight``, refused when negative or not finite, or when there is no student auxiliary head to
        distil."""
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight < math.inf:
            raise ConfigError(f'aux_distill_weight={weight!r} must be a finite number >= 0 (0: distil the decode '
                              'logits only)')
        if weight > 0:
            if not auxiliary_heads(self.student):
                raise ConfigError(f'aux_distill_weight={weight} but the student ({type(self.student).__name__} with '
                                  f'{type(self.student.backbone).__name__}) has no auxiliary head to distil; set '
                                  'model.aux_distill_weight=0')
            for head in auxiliary_heads(self.student):
                check_class_options(self.distill_losses, head.num_classes)
        return float(weight)

    def _check_auxiliary_pairs(self) -> None:
        """With ``aux_distill_weight > 0`` the i-th student auxiliary head learns from the i-th teacher one: both
        must have as many heads, pairwise predicting the same classes."""
        if self.aux_distill_weight == 0:
            return
        student_aux, teacher_aux = auxiliary_heads(self.student), auxiliary_heads(self.teacher)
        if len(teacher_aux) != len(student_aux):
            raise ConfigError(f'aux_distill_weight={self.aux_distill_weight} pairs auxiliary heads by position, but '
                              f'the student has {len(student_aux)} and the teacher {len(teacher_aux)}; give the '
                              'teacher an auxiliary head for each student one, or set model.aux_distill_weight=0')
        for index, (student_head, teacher_head) in enumerate(zip(student_aux, teacher_aux)):
            if student_head.num_classes != teacher_head.num_classes:
                raise ConfigError(f'student auxiliary head {index} predicts {student_head.num_classes} classes but the '
                                  f"teacher's predicts {teacher_head.num_classes}; they must predict the same classes "
                                  '(or set model.aux_distill_weight=0)')

    def _check_teacher_config(self, teacher_cfg: dict, data_preprocessor: Optional[dict]) -> None:
        student_classes = self.student.num_classes
        teacher_classes = _config_num_classes(teacher_cfg.get('decode_head'))
        if teacher_classes != student_classes:
            raise ConfigError(f'teacher decode_head.num_classes={teacher_classes} but student has '
                              f'{student_classes}; teacher and student must predict the same classes')
        teacher_preprocessor = teacher_cfg.get('data_preprocessor') or {}
        for key in ('mean', 'std', 'bgr_to_rgb'):
            if key in teacher_preprocessor and data_preprocessor and \
                    teacher_preprocessor[key] != data_preprocessor.get(key):
                raise ConfigError(f'teacher data_preprocessor.{key}={teacher_preprocessor[key]} differs from the '
                                  f"distiller's {data_preprocessor.get(key)}; the teacher sees the same inputs")

    def loss(self, inputs: Tensor, data_samples: SampleList) -> Dict[str, Tensor]:
        """The student's own losses plus the distillation losses; parts of each loss are logged too."""
        if self.teacher is None:
            raise RuntimeError('SegDistiller was built without a teacher (evaluation only) and cannot train')
        decode, aux = head_logits(self.student, self.student.extract_feat(inputs))
        losses = self._student_losses(decode, aux, data_samples)

        teacher_logits, teacher_aux = self.teacher_logits(inputs)
        gt = torch.stack([sample.gt_sem_seg.data for sample in data_samples])
        losses.update(distill_loss_dict(self.distill_losses, decode[-1], teacher_logits, gt, 'distill',
                                        self.distill_weight_factor))
        # empty teacher_aux (aux_distill_weight == 0): no auxiliary distillation
        for prefix, student_aux_logits, teacher_aux_logits in zip(log_names('distill_aux', len(aux)), aux, teacher_aux):
            losses.update(distill_loss_dict(self.distill_losses, student_aux_logits, teacher_aux_logits, gt, prefix,
                                            self.distill_weight_factor * self.aux_distill_weight))
        return losses

    def _student_losses(self, decode: List[Tensor], aux: List[Tensor],
                        data_samples: SampleList) -> Dict[str, Tensor]:
        """Each student head's own losses on its logits, named as MMSeg names them (``decode`` or ``decode_<stage>``
        of a cascade, ``aux`` or ``aux_<i>``)."""
        heads = decode_heads(self.student) + auxiliary_heads(self.student)
        names = log_names('decode', len(decode)) + log_names('aux', len(aux))
        losses = {}
        for name, head, logits in zip(names, heads, decode + aux):
            losses.update(add_prefix(head.loss_by_feat(logits, data_samples), name))
        return losses

    def student_logits(self, inputs: Tensor) -> Tensor:
        """The student's prediction logits (a cascade's last stage) at its output resolution, in its current mode."""
        decode, _ = head_logits(self.student, self.student.extract_feat(inputs), with_aux=False)
        return decode[-1]

    def teacher_logits(self, inputs: Tensor) -> Tuple[Tensor, List[Tensor]]:
        """The teacher's prediction logits (a cascade's last stage) and, when ``aux_distill_weight > 0``, its
        auxiliary heads' logits: float32, computed without gradients at ``teacher_precision``."""
        def heads(teacher: nn.Module, batch: Tensor) -> List[Tensor]:
            decode, aux = head_logits(teacher, teacher.extract_feat(batch), with_aux=self.aux_distill_weight > 0)
            return [decode[-1]] + aux

        logits, *aux_logits = self.teacher_outputs(heads, inputs)
        return logits, aux_logits

    @property
    def decode_head(self) -> nn.Module:
        """The student's prediction head (MMSeg's SegTTAModel reads it): a cascade's last stage."""
        return prediction_head(self.student)

    @property
    def out_channels(self) -> int:
        return self.student.out_channels

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        return self.student.extract_feat(inputs)

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        return self.student.encode_decode(inputs, batch_img_metas)

    def predict(self, inputs: Tensor, data_samples: OptSampleList = None) -> SampleList:
        """The student's prediction, exactly as MMSeg's EncoderDecoder makes it."""
        return self.student.predict(inputs, data_samples)

    def _forward(self, inputs: Tensor, data_samples: OptSampleList = None) -> Tensor:
        return self.student._forward(inputs, data_samples)
