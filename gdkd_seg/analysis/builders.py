"""Building what the teacher analysis and the term maps look at, from a config: the teacher (or the distiller with a
trained student) and the dataloader of a split."""
import copy
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmseg.registry import MODELS
from torch import nn

from ..checkpoint.loading import load_checkpoint_file
from ..checkpoint.matching import check_state_dict_matches, student_weights
from ..models.frozen_teacher import build_frozen_teacher, teacher_model_config
from ..utils.errors import ConfigError

DISTILLER_TYPES = ('SegDistiller',)


def is_distillation_config(cfg: Config) -> bool:
    return cfg.model.get('type') in DISTILLER_TYPES


def gdkd_options(cfg: Config) -> dict:
    """``k``, ``temperature``, ``mass_clamp`` and, for ``partition='topp'``, ``top_p`` and ``k_max`` of the
    config's first GDKDLoss (``{}`` when it has none)."""
    for loss in (cfg.model.get('distill_losses') or {}).values():
        if loss.get('type') == 'GDKDLoss':
            options = dict(k=loss.get('k', 3), temperature=loss.get('temperature', 1.0),
                           mass_clamp=loss.get('mass_clamp'))
            if loss.get('partition') == 'topp':
                options.update(top_p=loss.get('top_p', 0.9), k_max=loss.get('k_max'))
            return options
    return {}


def build_teacher(cfg: Config, checkpoint: Optional[str]) -> nn.Module:
    """The frozen segmentor to analyse, its weights loaded strictly (a mismatch is refused, the file is read with
    ``weights_only=True``).

    Args:
        cfg: an MMSeg segmentor config, or a distillation config (then its ``model.teacher``, behind the
            distiller's data preprocessor, as in distillation).
        checkpoint: the segmentor's weights; for a distillation config None means ``model.teacher_ckpt``.

    Raises:
        ConfigError: when a plain segmentor config comes without a checkpoint.
    """
    if is_distillation_config(cfg):
        model_cfg = teacher_model_config(cfg.model.teacher)
        model_cfg['data_preprocessor'] = copy.deepcopy(
            cfg.model.get('data_preprocessor') or cfg.model.student.get('data_preprocessor'))
        checkpoint = checkpoint or cfg.model.get('teacher_ckpt')
    else:
        model_cfg = copy.deepcopy(cfg.model)
        if not checkpoint:
            raise ConfigError('CHECKPOINT is required for a segmentor config (only a distillation config has a '
                              'model.teacher_ckpt to fall back on): analysing random weights would show nothing')
    return build_frozen_teacher(model_cfg, checkpoint, MODELS)


def build_distiller(cfg: Config, student_checkpoint: str) -> nn.Module:
    """The config's SegDistiller, its teacher from ``model.teacher_ckpt`` and its student from
    ``student_checkpoint`` (strictly: missing, unexpected or mis-shaped keys are refused), in eval mode."""
    if not is_distillation_config(cfg):
        raise ConfigError(f'model.type={cfg.model.get("type")!r} is not a distillation config (SegDistiller)')
    distiller = MODELS.build(cfg.model)
    weights = student_weights(load_checkpoint_file(student_checkpoint, setting='the STUDENT_CKPT argument'),
                              student_checkpoint)
    check_state_dict_matches(weights, distiller.student.state_dict(),
                             f'{student_checkpoint} does not match the student of the config',
                             'Is it a checkpoint of this config?', False)
    distiller.student.load_state_dict(weights, strict=False)
    return distiller.eval()


def build_split_loader(cfg: Config, split: str, max_images: Optional[int]):
    """The dataloader over ``split`` (``'val'`` or ``'train'``) with the config's test pipeline, in order.

    ``'train'`` takes the training images and labels (its ``data_root`` and ``data_prefix``) through the val
    dataloader's dataset settings and test pipeline: no random augmentation. ``max_images``: only the first ones.
    """
    loader = copy.deepcopy(cfg.val_dataloader)
    if split == 'train':
        train = cfg.train_dataloader.dataset
        train = train.get('dataset', train)  # the dataset inside a wrapper such as RepeatDataset
        for key in ('data_root', 'data_prefix', 'ann_file'):
            if key in train:
                loader.dataset[key] = copy.deepcopy(train[key])
    elif split != 'val':
        raise ConfigError(f"split={split!r}: choose 'val' or 'train'")
    if max_images is not None:
        if max_images < 1:
            raise ConfigError(f'--max-images {max_images} must be >= 1')
        loader.dataset['indices'] = max_images
    if loader.get('num_workers', 0) == 0:
        loader['persistent_workers'] = False
    loader['sampler'] = dict(type='DefaultSampler', shuffle=False)
    # the config's scope for this build only: the process's current scope stays as it was
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmseg')):
        return Runner.build_dataloader(loader)


def default_device() -> str:
    return 'cuda' if torch.cuda.is_available() else 'cpu'
