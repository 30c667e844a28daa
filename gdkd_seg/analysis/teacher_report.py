"""What the teacher knows: its predictive distribution over a split, per ground-truth class, with pictures and a
recommended ``k`` (the logic of ``tools/analysis_tools/analyze_teacher.py``)."""
import os
import os.path as osp
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.utils import ProgressBar

from ..models.segmentor_heads import prediction_head
from ..utils.errors import ConfigError
from ..utils.pictures import colorize, heat_map, mistakes, read_image, side_by_side
from ..utils.plots import plot_series
from ..utils.tables import markdown_table, write_csv
from .builders import build_split_loader, build_teacher, gdkd_options
from .teacher_statistics import TOP_PS, TeacherStatistics, per_class_rows, pixel_maps


def analyze_teacher(cfg: Config, checkpoint: Optional[str], out: str, split: str = 'val',
                    max_images: Optional[int] = None, pictures: int = 4, k: Optional[int] = None,
                    temperature: Optional[float] = None, device: str = 'cpu') -> Tuple[str, str]:
    """Stream a split through the teacher and write ``out``: ``per_class.md`` / ``per_class.csv`` (pixels,
    accuracy, mean top-1 probability, top-2..5 mass, entropy, mean top-p set size for p = 0.8 / 0.9 / 0.95, the
    shares of pixels whose GDKD or DKD group mass is below float32's eps, where the authors' mass clamp acts),
    ``cumulative_mass.png``, ``top_p_set_sizes.png``, ``recommendation.txt`` (the recommended k and the clamp's
    reach) and ``pictures/`` (image | teacher
    prediction | entropy | top-k mass | where the teacher is wrong). Memory holds one batch and fixed-size sums per
    class.

    Args:
        cfg: an MMSeg segmentor config, or a distillation config (its teacher), its default scope current.
        checkpoint: the segmentor's weights; for a distillation config None means ``model.teacher_ckpt``.
        out: the folder to write to.
        split: ``'val'`` or ``'train'`` (through the test pipeline).
        max_images: only the first images.
        pictures: images drawn as panels.
        k: k of the top-k mass map and the clamp counts (default: the config's GDKDLoss k, else 3).
        temperature: softmax temperature (default: the config's GDKDLoss temperature, else 1).
        device: where the teacher runs.

    Returns:
        The per-class markdown table and the recommendation's reasoning.
    """
    loss_options = gdkd_options(cfg)
    temperature = temperature or loss_options.get('temperature', 1.0)
    k = k or loss_options.get('k', 3)
    loader = build_split_loader(cfg, split, max_images)
    teacher = build_teacher(cfg, checkpoint).to(device)
    class_names, palette = loader.dataset.metainfo['classes'], loader.dataset.metainfo['palette']
    if not 1 <= k <= len(class_names):
        raise ConfigError(f'--k {k} must be between 1 and the {len(class_names)} classes')
    ignore_index = prediction_head(teacher).ignore_index
    statistics = TeacherStatistics(len(class_names), TOP_PS, temperature, ignore_index, device, k=k,
                                   top_p=loss_options.get('top_p'), k_max=loss_options.get('k_max'))
    os.makedirs(osp.join(out, 'pictures'), exist_ok=True)

    progress = ProgressBar(len(loader.dataset))
    drawn = 0
    with torch.no_grad():
        for data in loader:
            for sample in teacher.test_step(data):
                logits = sample.seg_logits.data.float()
                statistics.update(logits[None], sample.gt_sem_seg.data.to(logits.device))
                if drawn < pictures:
                    drawn += 1
                    path = osp.join(out, 'pictures', osp.splitext(osp.basename(sample.img_path))[0] + '.png')
                    cv2.imwrite(path, _panel(sample, logits, k, temperature, palette, ignore_index))
                progress.update()
    print()

    header, rows = per_class_rows(statistics, class_names)
    write_csv(osp.join(out, 'per_class.csv'), header, rows)
    table = markdown_table(header, rows)
    with open(osp.join(out, 'per_class.md'), 'w', encoding='utf-8') as file:
        file.write(f'Teacher predictive distribution per ground-truth class (T={statistics.temperature:g})\n\n')
        file.write(table)
    _write_plots(statistics, class_names, out)
    _, reasoning = statistics.recommendation()
    reasoning += '\n\n' + statistics.clamp_report()
    with open(osp.join(out, 'recommendation.txt'), 'w', encoding='utf-8') as file:
        file.write(reasoning + '\n')
    return table, reasoning


def _write_plots(statistics: TeacherStatistics, class_names: Sequence[str], out: str) -> None:
    means = statistics.per_class()
    curves = {name: means['cumulative_mass'][index].numpy() for index, name in enumerate(class_names)
              if means['pixels'][index] > 0}
    curves['all pixels'] = statistics.overall_cumulative_mass().numpy()
    plot_series(curves, osp.join(out, 'cumulative_mass.png'), 'Mean cumulative top-k teacher mass per class',
                'k', 'mean probability of the top-k classes')
    histogram = statistics.set_size_histogram()
    shares = {f'top-p set, p={p:g}': (histogram[index, 1:] / histogram[index].sum()).numpy()
              for index, p in enumerate(statistics.top_ps)}
    plot_series(shares, osp.join(out, 'top_p_set_sizes.png'), 'Size of the teacher\'s top-p set',
                'classes in the set', 'share of valid pixels', bars=True)


def _panel(sample, logits: torch.Tensor, k: int, temperature: float, palette, ignore_index: int) -> np.ndarray:
    """image | teacher prediction | entropy | top-k mass | where the teacher is wrong."""
    maps = {key: value.cpu().numpy() for key, value in pixel_maps(logits, k, temperature).items()}
    labels = sample.gt_sem_seg.data[0].cpu().numpy()
    image = read_image(sample.img_path, labels.shape)
    return side_by_side([
        ('image', image), ('teacher', colorize(maps['prediction'], palette)),
        ('entropy', heat_map(maps['entropy'], np.log(logits.shape[0]))),
        (f'top-{k} mass', heat_map(maps['top_k_mass'], 1.0)),
        ('wrong', mistakes(image, maps['prediction'], labels, ignore_index))])
