"""Where the student still disagrees with the teacher: per-pixel maps of the three GDKD terms (the logic of
``tools/analysis_tools/visualize_distill.py``)."""
import os
import os.path as osp
from typing import Optional

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.utils import ProgressBar

from ..losses import gdkd_pixel_terms
from ..losses.inputs import check_logits, labels_and_valid
from ..utils.errors import ConfigError
from ..utils.pictures import colorize, heat_map, read_image, side_by_side
from ..utils.tables import markdown_table
from .builders import build_distiller, build_split_loader, gdkd_options

TERMS = {'kl_mass': 'mass KL', 'kl_top': 'top-k KL', 'kl_other': 'rest KL'}


def map_gdkd_terms(cfg: Config, student_checkpoint: str, out: str, split: str = 'val',
                   max_images: Optional[int] = None, pictures: int = 4, device: str = 'cpu') -> str:
    """Map the config's GDKDLoss terms (its ``k`` and ``temperature``; top-k partition), unweighted, between the
    teacher and a distilled student, on the decode-head logits the loss compares (the teacher's resized to the
    student's): the KL between the top-k / rest masses, within the teacher's top-k and within the rest. Writes
    ``out/terms.md`` (each term's mean over the valid pixels of the split) and ``out/pictures/`` (image | teacher |
    student | the three maps, each scaled to its own maximum in that image, written in its title).

    Args:
        cfg: a distillation config, its default scope current; its teacher comes from ``model.teacher`` /
            ``model.teacher_ckpt``.
        student_checkpoint: a SegDistiller checkpoint (``student.*`` keys; another student's is refused).
        out: the folder to write to.
        split, max_images, pictures, device: as :func:`gdkd_seg.analysis.teacher_report.analyze_teacher`.

    Returns:
        The markdown table of the terms' means.
    """
    options = gdkd_options(cfg)
    if not options:
        raise ConfigError(f'{cfg.filename} has no GDKDLoss in model.distill_losses: its terms are what is drawn')
    loader = build_split_loader(cfg, split, max_images)
    distiller = build_distiller(cfg, student_checkpoint).to(device)
    palette = loader.dataset.metainfo['palette']
    ignore_index = distiller.decode_head.ignore_index
    sums = dict.fromkeys(TERMS, 0.0)
    pixels, drawn = 0, 0
    os.makedirs(osp.join(out, 'pictures'), exist_ok=True)
    progress = ProgressBar(len(loader.dataset))
    with torch.no_grad():
        for data in loader:
            data = distiller.data_preprocessor(data, False)
            inputs = data['inputs']
            student = distiller.student_logits(inputs)
            teacher = check_logits(student, distiller.teacher_logits(inputs)[0])
            terms = gdkd_pixel_terms(student, teacher, options['k'], options['temperature'], options['mass_clamp'])
            for index, sample in enumerate(data['data_samples']):
                _, valid = labels_and_valid(sample.gt_sem_seg.data[None], student[index:index + 1], ignore_index)
                for name in TERMS:
                    sums[name] += float(terms[name][index][valid[0]].sum())
                pixels += int(valid.sum())
                if drawn < pictures:
                    drawn += 1
                    name = osp.splitext(osp.basename(sample.img_path))[0] + '.png'
                    cv2.imwrite(osp.join(out, 'pictures', name),
                                _panel(sample, teacher[index], student[index], terms, index, palette))
                progress.update()
    print()
    means = {name: total / max(pixels, 1) for name, total in sums.items()}
    table = markdown_table(['term', f'mean over {pixels} valid pixels (unweighted, k={options["k"]}, '
                            f'T={options["temperature"]:g})'], [[TERMS[name], value] for name, value in means.items()],
                           digits=4)
    with open(osp.join(out, 'terms.md'), 'w', encoding='utf-8') as file:
        file.write(table)
    return table


def _panel(sample, teacher: torch.Tensor, student: torch.Tensor, terms: dict, index: int, palette) -> np.ndarray:
    """image | teacher | student | the three term maps, at the label's size."""
    size = sample.gt_sem_seg.data.shape[1:]
    predictions = [cv2.resize(logits.argmax(0).to(torch.uint8).cpu().numpy(), (size[1], size[0]),
                              interpolation=cv2.INTER_NEAREST) for logits in (teacher, student)]
    panels = [('image', read_image(sample.img_path, size)), ('teacher', colorize(predictions[0], palette)),
              ('student', colorize(predictions[1], palette))]
    for name, title in TERMS.items():
        values = F.interpolate(terms[name][index][None, None].float(), size=tuple(size), mode='bilinear',
                               align_corners=False)[0, 0].cpu().numpy()
        panels.append((f'{title}\nmax {values.max():.2g}', heat_map(values, values.max())))
    return side_by_side(panels)
