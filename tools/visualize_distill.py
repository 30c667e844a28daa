"""Where does the student still disagree with the teacher? Per-pixel maps of the three GDKD terms.

    python tools/visualize_distill.py CONFIG STUDENT_CKPT [--split val|train] [--max-images N] [--out DIR]
        [--pictures N] [--device cuda|cpu] [--cfg-options ...]

CONFIG is a distillation config: its teacher comes from ``model.teacher`` / ``model.teacher_ckpt``, the student's
weights from STUDENT_CKPT (a SegDistiller checkpoint, ``student.*`` keys; a checkpoint of another student is
refused). The terms are those of the config's GDKDLoss (its ``k`` and ``temperature``; top-k partition), unweighted,
on the decode-head logits the loss compares (the teacher's resized to the student's): the KL between the top-k /
rest masses, the KL within the teacher's top-k, and the KL within the rest. Writes ``--out/terms.md`` (each term's
mean over the valid pixels of the split) and ``--out/pictures/`` (image | teacher | student | the three maps, each
map scaled to its own maximum in that image, written in its title).
"""
import argparse
import os
import os.path as osp

import cv2
import numpy as np
import torch
import torch.nn.functional as F

import gdkd_seg  # noqa: F401  (registers the toolkit and applies the stack's compatibility fixes)
from gdkd_seg.analysis import markdown_table
from gdkd_seg.inspection import (build_distiller, build_split_loader, colorize, default_device, gdkd_options,
                                 heat_map, read_image, side_by_side)
from gdkd_seg.losses import gdkd_pixel_terms
from gdkd_seg.losses.inputs import check_logits, labels_and_valid
from gdkd_seg.run_config import load_run_config
from mmengine.config import DictAction
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar

TERMS = {'kl_mass': 'mass KL', 'kl_top': 'top-k KL', 'kl_other': 'rest KL'}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Per-pixel maps of the GDKD terms between teacher and student')
    parser.add_argument('config', help='the distillation config the student was trained with')
    parser.add_argument('student_ckpt', help='a SegDistiller checkpoint (e.g. work_dirs/.../iter_40000.pth)')
    parser.add_argument('--split', choices=('val', 'train'), default='val')
    parser.add_argument('--max-images', type=int, help='only the first N images')
    parser.add_argument('--out', default='work_dirs/visualize_distill')
    parser.add_argument('--pictures', type=int, default=4, help='images drawn (default 4)')
    parser.add_argument('--device', default=default_device(), help='cuda when available, else cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override settings in the config')
    return parser.parse_args()


def upsampled(values: torch.Tensor, size) -> np.ndarray:
    """A ``(h, w)`` map bilinearly at ``size`` ``(H, W)``."""
    return F.interpolate(values[None, None].float(), size=tuple(size), mode='bilinear',
                         align_corners=False)[0, 0].cpu().numpy()


def main() -> None:
    args = parse_args()
    cfg = load_run_config(args.config, 'none', args.cfg_options, args.out)
    init_default_scope(cfg.get('default_scope', 'mmseg'))  # this process builds the config's modules by name
    options = gdkd_options(cfg)
    if not options:
        raise ValueError(f'{args.config} has no GDKDLoss in model.distill_losses: its terms are what is drawn')
    loader = build_split_loader(cfg, args.split, args.max_images)
    distiller = build_distiller(cfg, args.student_ckpt).to(args.device)
    palette = loader.dataset.metainfo['palette']
    ignore_index = distiller.decode_head.ignore_index
    sums = dict.fromkeys(TERMS, 0.0)
    pixels, drawn = 0, 0
    os.makedirs(osp.join(args.out, 'pictures'), exist_ok=True)
    progress = ProgressBar(len(loader.dataset))
    with torch.no_grad():
        for data in loader:
            data = distiller.data_preprocessor(data, False)
            inputs = data['inputs']
            student = distiller.student_logits(inputs)
            teacher = check_logits(student, distiller.teacher_logits(inputs)[0])
            terms = gdkd_pixel_terms(student, teacher, options['k'], options['temperature'])
            for index, sample in enumerate(data['data_samples']):
                _, valid = labels_and_valid(sample.gt_sem_seg.data[None], student[index:index + 1], ignore_index)
                for name in TERMS:
                    sums[name] += float(terms[name][index][valid[0]].sum())
                pixels += int(valid.sum())
                if drawn < args.pictures:
                    drawn += 1
                    size = sample.gt_sem_seg.data.shape[1:]
                    predictions = [cv2.resize(logits[index].argmax(0).to(torch.uint8).cpu().numpy(),
                                              (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
                                   for logits in (teacher, student)]
                    panels = [('image', read_image(sample.img_path, size)),
                              ('teacher', colorize(predictions[0], palette)),
                              ('student', colorize(predictions[1], palette))]
                    for name, title in TERMS.items():
                        values = upsampled(terms[name][index], size)
                        panels.append((f'{title}\nmax {values.max():.2g}', heat_map(values, values.max())))
                    name = osp.splitext(osp.basename(sample.img_path))[0] + '.png'
                    cv2.imwrite(osp.join(args.out, 'pictures', name), side_by_side(panels))
                progress.update()
    print()
    means = {name: total / max(pixels, 1) for name, total in sums.items()}
    table = markdown_table(['term', f'mean over {pixels} valid pixels (unweighted, k={options["k"]}, '
                            f'T={options["temperature"]:g})'], [[TERMS[name], value] for name, value in means.items()],
                           digits=4)
    with open(osp.join(args.out, 'terms.md'), 'w', encoding='utf-8') as file:
        file.write(table)
    print(table)
    print(f'wrote {args.out}: terms.md, pictures/ ({drawn})')


if __name__ == '__main__':
    main()
