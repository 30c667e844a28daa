"""Building a frozen teacher from a config and a checkpoint, with loud errors for anything that does not match.

Shared by the segmentation and classification distillers. A teacher whose weights did not load must stop the run:
distilling from random weights is never what the user wanted.
"""
import contextlib
import hashlib
import os
import os.path as osp
from typing import Callable, List, Optional, Sequence, Union

import torch
from mmengine.config import Config, ConfigDict
from mmengine.hub import get_config
from mmengine.logging import print_log
from mmengine.registry import Registry
from mmengine.runner import CheckpointLoader
from torch import Tensor, nn

from ..checkpoint.loading import CheckpointNotFoundError, loading_for
from ..checkpoint.matching import CheckpointMismatchError, check_state_dict_matches
from ..utils.errors import ConfigError

# teacher_precision -> the autocast dtype of the teacher's forward (None: plain float32, no autocast)
TEACHER_PRECISIONS = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def teacher_model_config(teacher: Union[dict, str]) -> ConfigDict:
    """The teacher's model config: given inline, or the ``model`` of a config file (a path or ``mmseg::...``).

    A config file's top-level ``data_preprocessor`` (where mmpretrain's configs keep it) becomes the model's when
    the model has none, so ``data_preprocessor`` is the teacher's in either case.
    """
    if not isinstance(teacher, str):
        return ConfigDict(teacher)
    if '::' in teacher:
        config = get_config(teacher)
    elif osp.isfile(teacher):
        config = Config.fromfile(teacher)
    else:
        raise ConfigError(f'teacher config {teacher!r} does not exist; give a config file, an '
                          "'mmseg::...' / 'mmpretrain::...' config, or the model config as a dict")
    model = ConfigDict(config.model)
    if not model.get('data_preprocessor') and config.get('data_preprocessor'):
        model.data_preprocessor = config.data_preprocessor
    return model


def _checkpoint_state_dict(checkpoint_path: str) -> dict:
    """Read a checkpoint with ``weights_only=True`` (MMEngine's loader, made safe by
    :mod:`gdkd_seg.checkpoint.loading`; URLs fetched with a timeout by :mod:`gdkd_seg.checkpoint.download`) and
    return its bare state dict."""
    try:
        with loading_for('model.teacher_ckpt'):
            checkpoint = CheckpointLoader.load_checkpoint(checkpoint_path, map_location='cpu')
    except FileNotFoundError as err:
        raise CheckpointNotFoundError(f'teacher_ckpt {checkpoint_path!r} does not exist: {err}') from err
    state_dict = checkpoint.get('state_dict', checkpoint.get('model', checkpoint))
    if not isinstance(state_dict, dict):
        raise CheckpointMismatchError(f'teacher_ckpt {checkpoint_path!r} holds no state dict (found '
                                      f'{type(state_dict)})')
    return {key[len('module.'):] if key.startswith('module.') else key: value for key, value in state_dict.items()}


def load_teacher_weights(teacher: nn.Module, checkpoint_path: str) -> None:
    """Load ``checkpoint_path`` into ``teacher`` strictly (up to ``num_batches_tracked``).

    Raises:
        CheckpointMismatchError: naming the missing, unexpected or mis-shaped keys when the checkpoint does not match
            the teacher config.
    """
    state_dict = _checkpoint_state_dict(checkpoint_path)
    expected = teacher.state_dict()
    check_state_dict_matches(state_dict, expected, f'teacher_ckpt {checkpoint_path!r} does not match the teacher '
                             'config', 'Check that the checkpoint belongs to this teacher architecture.')
    state_dict = {key: value for key, value in state_dict.items() if key in expected}
    teacher.load_state_dict(state_dict, strict=False)


def build_frozen_teacher(teacher: Union[dict, str], teacher_ckpt: Optional[str], registry: Registry) -> nn.Module:
    """Build the teacher from its config, load ``teacher_ckpt`` and freeze it (eval mode, no gradients).

    Raises:
        ConfigError: when ``teacher_ckpt`` is missing.
        CheckpointNotFoundError / CheckpointLoadError / CheckpointMismatchError: when it cannot be read or does not
            match (see :func:`load_teacher_weights`).
    """
    if not teacher_ckpt:
        raise ConfigError('teacher_ckpt is required: a teacher without trained weights would distill noise. '
                          'Pass a local checkpoint path or a URL of the teacher config\'s weights.')
    if '://' not in teacher_ckpt and not osp.exists(teacher_ckpt):
        raise CheckpointNotFoundError(f'teacher_ckpt {teacher_ckpt!r} does not exist')
    model_cfg = teacher_model_config(teacher)
    # weights come from teacher_ckpt: never fetch ImageNet-pretrained backbones for the teacher
    model_cfg.pop('pretrained', None)
    model = registry.build(model_cfg)
    load_teacher_weights(model, teacher_ckpt)
    print_log(f'teacher weights loaded from {_checkpoint_identity(teacher_ckpt)}', logger='current')
    model.requires_grad_(False)
    return model.eval()


def _checkpoint_identity(checkpoint_path: str) -> str:
    """The checkpoint as the log shows it: a URL as is, a local file with its size and a short SHA-256, so that a
    run's log says exactly which weights it distilled from."""
    if '://' in checkpoint_path:
        return checkpoint_path
    digest = hashlib.sha256()
    with open(checkpoint_path, 'rb') as file:
        for block in iter(lambda: file.read(1 << 20), b''):
            digest.update(block)
    size = os.path.getsize(checkpoint_path)
    return f'{osp.abspath(checkpoint_path)} ({size / 1e6:.1f} MB, sha256 {digest.hexdigest()[:12]})'


def teacher_autocast_dtype(teacher_precision: str) -> Optional[torch.dtype]:
    """The autocast dtype for a ``teacher_precision`` option (None for ``'fp32'``).

    Raises:
        ConfigError: naming the option and the accepted values.
    """
    if not isinstance(teacher_precision, str) or teacher_precision not in TEACHER_PRECISIONS:
        raise ConfigError(f'teacher_precision={teacher_precision!r} is not one of '
                          f'{", ".join(map(repr, TEACHER_PRECISIONS))}: the precision of the frozen teacher\'s forward '
                          "('fp32' exact; 'bf16' / 'fp16' run it under autocast, faster on GPUs)")
    return TEACHER_PRECISIONS[teacher_precision]


class FrozenTeacherMixin:
    """Holds a frozen ``teacher`` outside the module tree of a distiller (an ``nn.Module``) and runs its forward.

    The teacher is then not in ``state_dict`` (checkpoints hold the student only; the teacher is rebuilt from its
    checkpoint), not in ``parameters()`` (optimizers and DDP never see it), never re-initialised by
    ``init_weights``, and stays in eval mode after ``train()``; device and dtype moves still reach it.

    Its forward (:meth:`teacher_outputs`) runs without gradients, at ``teacher_precision`` (under
    ``torch.autocast`` for ``'bf16'`` / ``'fp16'``; ``'fp32'`` adds no autocast, so the teacher runs in float32, or
    under AMP when the whole step does) and, with ``teacher_channels_last``, on channels_last weights and
    inputs (faster convolutions on GPUs with tensor cores); the losses get float32 logits whatever the precision.
    """

    def set_teacher(self, teacher: Optional[nn.Module], teacher_precision: str = 'fp32',
                    teacher_channels_last: bool = False) -> None:
        """Hold ``teacher`` (or None: no teacher, for evaluation) and the precision and layout of its forward.

        Raises:
            ConfigError: for a ``teacher_precision`` other than ``'fp32'``, ``'bf16'``, ``'fp16'``, or a
                ``teacher_channels_last`` that is not a bool.
        """
        autocast_dtype = teacher_autocast_dtype(teacher_precision)
        if not isinstance(teacher_channels_last, bool):
            raise ConfigError(f'teacher_channels_last={teacher_channels_last!r} must be True or False')
        if teacher is not None and teacher_channels_last:
            # once: device moves keep the layout (Tensor.to preserves the memory format)
            teacher.to(memory_format=torch.channels_last)
        self.__dict__['teacher'] = teacher
        self.teacher_precision = teacher_precision
        self.teacher_channels_last = teacher_channels_last
        self._teacher_autocast_dtype = autocast_dtype

    def teacher_outputs(self, forward: Callable[[nn.Module, Tensor], Sequence[Tensor]],
                        inputs: Tensor) -> List[Tensor]:
        """Run ``forward(teacher, inputs)`` without gradients at the teacher's precision and layout.

        Args:
            forward: computes the teacher's logits (one or more tensors) from the batch.
            inputs: the preprocessed batch ``(N, 3, H, W)``.

        Returns:
            The tensors ``forward`` returned, in float32 (float64 stays float64) and the standard (contiguous)
            layout the losses read; contiguous float32 outputs are returned as they are, without a copy.
        """
        if self.teacher_channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        # 'fp32' adds no autocast of its own, so under the optimizer wrapper's AMP the teacher runs as the student does
        precision = contextlib.nullcontext() if self._teacher_autocast_dtype is None else \
            torch.autocast(device_type=inputs.device.type, dtype=self._teacher_autocast_dtype)
        with torch.no_grad(), precision:
            outputs = forward(self.teacher, inputs)
        return [output.to(torch.promote_types(output.dtype, torch.float32), memory_format=torch.contiguous_format)
                for output in outputs]

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        if self.teacher is not None:
            self.teacher._apply(fn, *args, **kwargs)
        return self

    def train(self, mode: bool = True):
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self
