"""See what a teacher knows: its predictive distribution per ground-truth class over a dataset split.

    python tools/analyze_teacher.py CONFIG [CHECKPOINT] [--split val|train] [--max-images N] [--out DIR]
        [--pictures N] [--k K] [--temperature T] [--device cuda|cpu] [--cfg-options ...]

CONFIG is an MMSeg segmentor config (CHECKPOINT required) or a distillation config: then its teacher is analysed,
with CHECKPOINT as its weights or, when omitted, ``model.teacher_ckpt``, and ``k`` / ``temperature`` of its
GDKDLoss. Weights load strictly and safely (a checkpoint of another model is refused). Writes to ``--out``:
``per_class.md`` / ``per_class.csv`` (pixels, accuracy, mean top-1 probability, top-2..5 mass, entropy, mean top-p
set size for p = 0.8 / 0.9 / 0.95), ``cumulative_mass.png``, ``top_p_set_sizes.png``, ``recommendation.txt`` and
``pictures/`` (image | teacher prediction | entropy | top-k mass | where the teacher is wrong). The split is streamed:
memory holds one batch and fixed-size sums per class.
"""
import argparse
import csv
import os
import os.path as osp

import cv2
import numpy as np
import torch

import gdkd_seg  # noqa: F401  (registers the toolkit and applies the stack's compatibility fixes)
from gdkd_seg.analysis import TOP_PS, TeacherStatistics, markdown_table, per_class_rows, pixel_maps
from gdkd_seg.inspection import (build_split_loader, build_teacher, colorize, default_device, gdkd_options,
                                 heat_map, mistakes, plot_curves, read_image, side_by_side)
from gdkd_seg.models.seg_distiller import prediction_head
from gdkd_seg.run_config import load_run_config
from mmengine.config import DictAction
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Analyse a teacher's predictive distribution over a split")
    parser.add_argument('config', help='an MMSeg segmentor config or a distillation config (its teacher)')
    parser.add_argument('checkpoint', nargs='?',
                        help="the segmentor's weights; for a distillation config default model.teacher_ckpt")
    parser.add_argument('--split', choices=('val', 'train'), default='val',
                        help='the images analysed, through the test pipeline (default val)')
    parser.add_argument('--max-images', type=int, help='analyse only the first N images')
    parser.add_argument('--out', default='work_dirs/analyze_teacher', help='folder for the table, plots, pictures')
    parser.add_argument('--pictures', type=int, default=4, help='images drawn as panels (default 4)')
    parser.add_argument('--k', type=int, help="k of the top-k mass map (default: the config's GDKDLoss k, else 3)")
    parser.add_argument('--temperature', type=float,
                        help="softmax temperature (default: the config's GDKDLoss temperature, else 1)")
    parser.add_argument('--device', default=default_device(), help='cuda when available, else cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override settings in the config')
    return parser.parse_args()


def write_table(statistics: TeacherStatistics, class_names, out: str) -> str:
    header, rows = per_class_rows(statistics, class_names)
    with open(osp.join(out, 'per_class.csv'), 'w', newline='', encoding='utf-8') as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows([['' if value is None else value for value in row] for row in rows])
    table = markdown_table(header, rows)
    with open(osp.join(out, 'per_class.md'), 'w', encoding='utf-8') as file:
        file.write(f'Teacher predictive distribution per ground-truth class (T={statistics.temperature:g})\n\n')
        file.write(table)
    return table


def write_plots(statistics: TeacherStatistics, class_names, out: str) -> None:
    means = statistics.per_class()
    curves = {name: means['cumulative_mass'][index].numpy() for index, name in enumerate(class_names)
              if means['pixels'][index] > 0}
    curves['all pixels'] = statistics.overall_cumulative_mass().numpy()
    plot_curves(curves, osp.join(out, 'cumulative_mass.png'), 'Mean cumulative top-k teacher mass per class',
                'k', 'mean probability of the top-k classes')
    histogram = statistics.set_size_histogram()
    shares = {f'top-p set, p={p:g}': (histogram[index, 1:] / histogram[index].sum()).numpy()
              for index, p in enumerate(statistics.top_ps)}
    plot_curves(shares, osp.join(out, 'top_p_set_sizes.png'), 'Size of the teacher\'s top-p set',
                'classes in the set', 'share of valid pixels', bars=True)


def picture(sample, logits: torch.Tensor, k: int, temperature: float, palette, ignore_index: int) -> np.ndarray:
    maps = {key: value.cpu().numpy() for key, value in pixel_maps(logits, k, temperature).items()}
    labels = sample.gt_sem_seg.data[0].cpu().numpy()
    image = read_image(sample.img_path, labels.shape)
    return side_by_side([
        ('image', image), ('teacher', colorize(maps['prediction'], palette)),
        ('entropy', heat_map(maps['entropy'], np.log(logits.shape[0]))),
        (f'top-{k} mass', heat_map(maps['top_k_mass'], 1.0)),
        ('wrong', mistakes(image, maps['prediction'], labels, ignore_index))])


def main() -> None:
    args = parse_args()
    cfg = load_run_config(args.config, 'none', args.cfg_options, args.out)
    init_default_scope(cfg.get('default_scope', 'mmseg'))  # this process builds the config's modules by name
    loss_options = gdkd_options(cfg)
    temperature = args.temperature or loss_options.get('temperature', 1.0)
    k = args.k or loss_options.get('k', 3)
    loader = build_split_loader(cfg, args.split, args.max_images)
    teacher = build_teacher(cfg, args.checkpoint).to(args.device)
    metainfo = loader.dataset.metainfo
    class_names, palette = metainfo['classes'], metainfo['palette']
    if not 1 <= k <= len(class_names):
        raise ValueError(f'--k {k} must be between 1 and the {len(class_names)} classes')
    ignore_index = prediction_head(teacher).ignore_index
    statistics = TeacherStatistics(len(class_names), TOP_PS, temperature, ignore_index, args.device)
    os.makedirs(osp.join(args.out, 'pictures'), exist_ok=True)

    progress = ProgressBar(len(loader.dataset))
    drawn = 0
    with torch.no_grad():
        for data in loader:
            for sample in teacher.test_step(data):
                logits = sample.seg_logits.data.float()
                statistics.update(logits[None], sample.gt_sem_seg.data.to(logits.device))
                if drawn < args.pictures:
                    drawn += 1
                    path = osp.join(args.out, 'pictures', osp.splitext(osp.basename(sample.img_path))[0] + '.png')
                    cv2.imwrite(path, picture(sample, logits, k, temperature, palette, ignore_index))
                progress.update()
    print()

    table = write_table(statistics, class_names, args.out)
    write_plots(statistics, class_names, args.out)
    advice, reasoning = statistics.recommendation()
    with open(osp.join(args.out, 'recommendation.txt'), 'w', encoding='utf-8') as file:
        file.write(reasoning + '\n')
    print(table)
    print(reasoning)
    print(f'wrote {args.out}: per_class.md, per_class.csv, cumulative_mass.png, top_p_set_sizes.png, '
          f'recommendation.txt, pictures/ ({drawn})')


if __name__ == '__main__':
    main()
