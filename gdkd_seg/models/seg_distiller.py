"""SegDistiller: a trainable MMSeg student distilled from a frozen MMSeg teacher."""
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.utils import OptSampleList, SampleList, add_prefix
from torch import Tensor, nn

from .distill_losses import build_distill_losses, check_class_options, distill_loss_dict
from .teacher import FrozenTeacherMixin, build_frozen_teacher, teacher_model_config


def _heads(head: Optional[nn.Module]) -> List[nn.Module]:
    if head is None:
        return []
    return list(head) if isinstance(head, nn.ModuleList) else [head]


@MODELS.register_module()
class SegDistiller(FrozenTeacherMixin, BaseSegmentor):
    """Distil a frozen MMSeg teacher into a trainable MMSeg student on the student's decode-head logits.

    The teacher is held outside the module tree (:class:`FrozenTeacherMixin`): checkpoints hold the student only
    and the teacher is rebuilt from ``teacher_ckpt``; it is never optimised, re-initialised or put in train mode.

    Args:
        student: MMSeg segmentor config (an EncoderDecoder with decode head and optional auxiliary heads).
        teacher: MMSeg segmentor config, inline or as a config path (``mmseg::...`` or a file). ``None`` builds the
            student alone, for evaluation (``tools/test.py`` does this: testing never needs the teacher).
        teacher_ckpt: local path or URL of the teacher's weights; required when ``teacher`` is given.
        distill_losses: ``name -> loss config`` of registered losses (``GDKDLoss``, ``KDLoss``, ...), applied to the
            student's and teacher's decode-head logits with the ground truth. Names must start with ``loss``.
        aux_distill_weight: when > 0, the same losses are also applied to each auxiliary head's logits (student vs
            teacher, matched by position), scaled by this weight.
        teacher_precision: ``'fp32'`` (default), ``'bf16'`` or ``'fp16'``: the teacher's forward runs under
            ``torch.autocast`` at that precision (faster on GPUs; the losses still get float32 logits). See the
            README's "Teacher precision" for how much the logits and the loss move.
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
            raise ValueError('SegDistiller takes no pretrained or train_cfg of its own; set them in the student '
                             '(the teacher loads teacher_ckpt)')
        student_preprocessor = student.get('data_preprocessor')
        if data_preprocessor is None:
            data_preprocessor = student_preprocessor
        elif student_preprocessor and student_preprocessor.get('size') != data_preprocessor.get('size'):
            # MMEngine's Runner passes the config's top-level data_preprocessor to the distiller
            raise ValueError(f"the distiller's data_preprocessor.size={data_preprocessor.get('size')} differs from "
                             f"the student's {student_preprocessor.get('size')}; set the config's top-level "
                             'data_preprocessor (which the Runner gives the distiller) to the same size')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        student = dict(student)
        student.pop('data_preprocessor', None)
        self.student = MODELS.build(student)

        self.distill_losses = build_distill_losses(distill_losses, MODELS)
        check_class_options(self.distill_losses, self.student.decode_head.num_classes)
        self.aux_distill_weight = aux_distill_weight
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
            if aux_distill_weight > 0 and len(_heads(self.teacher.auxiliary_head)) < len(
                    _heads(self.student.auxiliary_head)):
                raise ValueError('aux_distill_weight > 0 needs a teacher auxiliary head for each student one')

    def _check_teacher_config(self, teacher_cfg: dict, data_preprocessor: Optional[dict]) -> None:
        student_classes = self.student.decode_head.num_classes
        teacher_classes = teacher_cfg.get('decode_head', {}).get('num_classes')
        if teacher_classes != student_classes:
            raise ValueError(f'teacher decode_head.num_classes={teacher_classes} but student has '
                             f'{student_classes}; teacher and student must predict the same classes')
        teacher_preprocessor = teacher_cfg.get('data_preprocessor') or {}
        for key in ('mean', 'std', 'bgr_to_rgb'):
            if key in teacher_preprocessor and data_preprocessor and \
                    teacher_preprocessor[key] != data_preprocessor.get(key):
                raise ValueError(f'teacher data_preprocessor.{key}={teacher_preprocessor[key]} differs from the '
                                 f"distiller's {data_preprocessor.get(key)}; the teacher sees the same inputs")

    def loss(self, inputs: Tensor, data_samples: SampleList) -> Dict[str, Tensor]:
        """The student's own losses plus the distillation losses; parts of each loss are logged too."""
        if self.teacher is None:
            raise RuntimeError('SegDistiller was built without a teacher (evaluation only) and cannot train')
        features = self.student.extract_feat(inputs)
        student_logits = self.student.decode_head(features)
        losses = add_prefix(self.student.decode_head.loss_by_feat(student_logits, data_samples), 'decode')
        student_aux = [head(features) for head in _heads(self.student.auxiliary_head)]
        for index, (head, logits) in enumerate(zip(_heads(self.student.auxiliary_head), student_aux)):
            prefix = 'aux' if len(student_aux) == 1 else f'aux_{index}'
            losses.update(add_prefix(head.loss_by_feat(logits, data_samples), prefix))

        teacher_logits, teacher_aux = self.teacher_logits(inputs)
        gt = torch.stack([sample.gt_sem_seg.data for sample in data_samples])
        losses.update(distill_loss_dict(self.distill_losses, student_logits, teacher_logits, gt, 'distill',
                                        self.distill_weight_factor))
        for index, (student_aux_logits, teacher_aux_logits) in enumerate(zip(student_aux, teacher_aux)):
            prefix = 'distill_aux' if len(student_aux) == 1 else f'distill_aux_{index}'
            losses.update(distill_loss_dict(self.distill_losses, student_aux_logits, teacher_aux_logits, gt, prefix,
                                            self.distill_weight_factor * self.aux_distill_weight))
        return losses

    def teacher_logits(self, inputs: Tensor) -> Tuple[Tensor, List[Tensor]]:
        """The teacher's decode-head logits and, when ``aux_distill_weight > 0``, its auxiliary heads' logits: float32,
        computed without gradients at ``teacher_precision``."""
        with_aux = self.aux_distill_weight > 0

        def heads(teacher: nn.Module, batch: Tensor) -> List[Tensor]:
            features = teacher.extract_feat(batch)
            aux = [head(features) for head in _heads(teacher.auxiliary_head)] if with_aux else []
            return [teacher.decode_head(features)] + aux

        logits, *aux_logits = self.teacher_outputs(heads, inputs)
        return logits, aux_logits

    @property
    def decode_head(self) -> nn.Module:
        """The student's decode head (MMSeg's SegTTAModel reads it)."""
        return self.student.decode_head

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
