"""Building what ``tools/analyze_teacher.py`` and ``tools/visualize_distill.py`` look at, from a config: the teacher
(or the distiller with a trained student), the dataloader of a split, and side-by-side picture panels."""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from mmengine.config import Config
from torch import nn

from .checkpoint_loading import load_checkpoint_file
from .state_dict_match import check_state_dict_matches

STUDENT_PREFIX = 'student.'
DISTILLER_TYPES = ('SegDistiller',)


def is_distillation_config(cfg: Config) -> bool:
    return cfg.model.get('type') in DISTILLER_TYPES


def gdkd_options(cfg: Config) -> dict:
    """``k`` and ``temperature`` of the config's first GDKDLoss (``{}`` when it has none)."""
    for loss in (cfg.model.get('distill_losses') or {}).values():
        if loss.get('type') == 'GDKDLoss':
            return dict(k=loss.get('k', 3), temperature=loss.get('temperature', 1.0))
    return {}


def build_teacher(cfg: Config, checkpoint: Optional[str]) -> nn.Module:
    """The frozen segmentor to analyse, its weights loaded strictly (a mismatch is refused, the file is read with
    ``weights_only=True``).

    Args:
        cfg: an MMSeg segmentor config, or a distillation config (then its ``model.teacher``, behind the
            distiller's data preprocessor, as in distillation).
        checkpoint: the segmentor's weights; for a distillation config None means ``model.teacher_ckpt``.

    Raises:
        ValueError: when a plain segmentor config comes without a checkpoint.
    """
    from mmseg.registry import MODELS

    from .models.teacher import build_frozen_teacher, teacher_model_config
    if is_distillation_config(cfg):
        model_cfg = teacher_model_config(cfg.model.teacher)
        model_cfg['data_preprocessor'] = copy.deepcopy(
            cfg.model.get('data_preprocessor') or cfg.model.student.get('data_preprocessor'))
        checkpoint = checkpoint or cfg.model.get('teacher_ckpt')
    else:
        model_cfg = copy.deepcopy(cfg.model)
        if not checkpoint:
            raise ValueError('CHECKPOINT is required for a segmentor config (only a distillation config has a '
                             'model.teacher_ckpt to fall back on): analysing random weights would show nothing')
    return build_frozen_teacher(model_cfg, checkpoint, MODELS)


def student_weights(checkpoint: dict, path: str) -> dict:
    """The student's weights (``student.*`` keys, prefix removed) of a SegDistiller checkpoint.

    Raises:
        ValueError: when the checkpoint holds none.
    """
    state_dict = checkpoint.get('state_dict', checkpoint)
    weights = {key[len(STUDENT_PREFIX):]: value for key, value in state_dict.items()
               if key.startswith(STUDENT_PREFIX)}
    if not weights:
        raise ValueError(f'{path} holds no {STUDENT_PREFIX}* weights; is it a SegDistiller checkpoint?')
    return weights


def build_distiller(cfg: Config, student_checkpoint: str) -> nn.Module:
    """The config's SegDistiller, its teacher from ``model.teacher_ckpt`` and its student from
    ``student_checkpoint`` (strictly: missing, unexpected or mis-shaped keys are refused), in eval mode."""
    from mmseg.registry import MODELS
    if not is_distillation_config(cfg):
        raise ValueError(f'model.type={cfg.model.get("type")!r} is not a distillation config (SegDistiller)')
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
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    loader = copy.deepcopy(cfg.val_dataloader)
    if split == 'train':
        train = cfg.train_dataloader.dataset
        train = train.get('dataset', train)  # the dataset inside a wrapper such as RepeatDataset
        for key in ('data_root', 'data_prefix', 'ann_file'):
            if key in train:
                loader.dataset[key] = copy.deepcopy(train[key])
    elif split != 'val':
        raise ValueError(f"split={split!r}: choose 'val' or 'train'")
    if max_images is not None:
        if max_images < 1:
            raise ValueError(f'--max-images {max_images} must be >= 1')
        loader.dataset['indices'] = max_images
    if loader.get('num_workers', 0) == 0:
        loader['persistent_workers'] = False
    loader['sampler'] = dict(type='DefaultSampler', shuffle=False)
    # the config's scope for this build only: the process's current scope stays as it was
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmseg')):
        return Runner.build_dataloader(loader)


def default_device() -> str:
    return 'cuda' if torch.cuda.is_available() else 'cpu'


# --- pictures ------------------------------------------------------------------------------------------------------

def colorize(labels: np.ndarray, palette: Sequence[Sequence[int]]) -> np.ndarray:
    """A label map ``(H, W)`` in the dataset's RGB palette as BGR (labels outside it black)."""
    lookup = np.zeros((256, 3), np.uint8)
    lookup[:len(palette)] = np.asarray(palette, np.uint8)[:, ::-1]
    return lookup[np.clip(labels, 0, 255).astype(np.uint8)]


def heat_map(values: np.ndarray, top: float) -> np.ndarray:
    """``values`` ``(H, W)`` from 0 to ``top`` in matplotlib's viridis colours, as BGR."""
    scaled = np.clip(values / max(top, 1e-12), 0, 1)
    return cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)


def mistakes(image: np.ndarray, prediction: np.ndarray, labels: np.ndarray, ignore_index: int) -> np.ndarray:
    """The image darkened, red where ``prediction`` differs from ``labels`` and grey where they are ignored."""
    panel = (image * 0.4).astype(np.uint8)
    panel[(prediction != labels) & (labels != ignore_index)] = (0, 0, 255)
    panel[labels == ignore_index] = (128, 128, 128)
    return panel


def side_by_side(panels: List[Tuple[str, np.ndarray]]) -> np.ndarray:
    """Titled ``(title, BGR image)`` panels of one height, concatenated left to right (a title's lines split at
    newlines)."""
    tiles = []
    for title, panel in panels:
        panel = np.ascontiguousarray(panel).copy()
        for line, text in enumerate(title.split('\n')):
            cv2.putText(panel, text, (4, 14 + 14 * line), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                        cv2.LINE_AA)
        tiles.append(panel)
    return np.concatenate(tiles, axis=1)


def read_image(path: str, size: Tuple[int, int]) -> np.ndarray:
    """The BGR image at ``path`` resized to ``size`` ``(H, W)`` when it differs."""
    image = cv2.imread(path)
    if image is None:
        raise FileNotFoundError(f'cannot read the image {path}')
    if image.shape[:2] != tuple(size):
        image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return image


def plot_curves(curves: Dict[str, np.ndarray], path: str, title: str, xlabel: str, ylabel: str,
                bars: bool = False) -> None:
    """Lines (or grouped bars) of ``name -> values over 1..n`` into a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9, 5))
    width = 0.8 / max(len(curves), 1)
    for index, (name, values) in enumerate(curves.items()):
        positions = np.arange(1, len(values) + 1)
        if bars:
            ax.bar(positions + (index - (len(curves) - 1) / 2) * width, values, width, label=name)
        else:
            ax.plot(positions, values, marker='.', label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
