"""What the step and teacher-precision benchmarks time: a config's SegDistiller with a teacher of random weights (the
timing does not depend on them), and random batches."""
import copy
import os.path as osp
import tempfile
from typing import Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch import nn

from ..engine.distributed import syncbn_to_bn
from ..models.frozen_teacher import teacher_model_config


def random_seg_batch(batch: int, crop: Tuple[int, int], num_classes: int,
                     device: str = 'cpu') -> Tuple[torch.Tensor, list]:
    """A batch of N(0, 1) images ``(batch, 3, H, W)`` and ``SegDataSample`` s with random labels in
    ``[0, num_classes)``, as a data preprocessor would hand them to a segmentor."""
    height, width = crop
    inputs = torch.randn(batch, 3, height, width, device=device)
    samples = []
    for _ in range(batch):
        sample = SegDataSample(metainfo=dict(img_shape=crop, pad_shape=crop, ori_shape=crop))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, height, width), device=device))
        samples.append(sample)
    return inputs, samples


def build_seg_distiller(cfg: Config, device: str, teacher_ckpt: Optional[str] = None,
                        model_options: Optional[dict] = None) -> nn.Module:
    """The config's SegDistiller on ``device``, in train mode, with the student at its initial weights.

    Without ``teacher_ckpt`` the teacher gets random weights, written to a temporary checkpoint so that the
    distiller loads it as it would real ones. Both are built on the CPU and then moved, as training does. SyncBN
    becomes BN (one process) and the student's ``pretrained`` is dropped (no download).

    Args:
        cfg: a config whose ``model`` is a ``SegDistiller``; not changed.
        device: ``'cpu'``, ``'cuda'``, ...
        teacher_ckpt: the teacher's real weights, if wanted.
        model_options: distiller options set over the config's (``teacher_precision``, ...).
    """
    model_cfg = copy.deepcopy(cfg.model)
    syncbn_to_bn(model_cfg)
    model_cfg.student.pretrained = None
    model_cfg.update(model_options or {})
    teacher_cfg = teacher_model_config(model_cfg.teacher)
    syncbn_to_bn(teacher_cfg)
    teacher_cfg.pop('pretrained', None)
    model_cfg.teacher = teacher_cfg
    with tempfile.TemporaryDirectory() as tmp:
        if not teacher_ckpt:
            teacher_ckpt = osp.join(tmp, 'teacher.pth')
            random_teacher = MODELS.build({key: value for key, value in teacher_cfg.items()
                                           if key != 'data_preprocessor'})
            torch.save({'state_dict': random_teacher.state_dict()}, teacher_ckpt)
        model_cfg.teacher_ckpt = teacher_ckpt
        return MODELS.build(model_cfg).to(device).train()


def crop_size(cfg: Config, crop: Optional[Sequence[int]]) -> Tuple[int, int]:
    """``crop`` (H, W) when given, else the student's data preprocessor ``size`` (the config's training crop)."""
    return tuple(crop or cfg.model.student.data_preprocessor['size'])
