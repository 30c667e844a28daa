"""The demo: the whole toolkit on the embedded toy city, end to end, on 2 CPU cores.

    python tools/demo.py [--seed 0] [--work-dir work_dirs/demo]

1. generates the toy city into ``data/toy_cityscapes`` (skipped when present);
2. trains a teacher (``configs/demo/teacher_toy.py``: the real DeepLabV3 teacher config, shrunk);
3. distils a small student with GDKD (``configs/demo/gdkd_toy.py``: inherits the Cityscapes GDKD config);
4. trains the same student without distillation and with KD, on the identical schedule;
5. evaluates all four with ``tools/test.py`` and writes ``results.md`` (mIoU, per-class IoU, training time),
   pictures (image | ground truth | teacher | GDKD student | plain student) and a per-class IoU bar chart;
6. analyses the teacher's predictive distribution (``tools/analyze_teacher.py``: ``teacher_analysis/``) and maps
   the GDKD terms between it and the GDKD student (``tools/visualize_distill.py``: ``gdkd_terms/``) on the first
   ``--analysis-images`` val images, their tables appended to ``results.md``.

Every step runs the real command-line tools in subprocesses, as a user would.
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List

import cv2
import numpy as np

TOOLS = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, osp.join(TOOLS, '..'))
from gdkd_seg.datasets.toy_cityscapes import CITYSCAPES_CLASSES, colorize_label, make_toy_cityscapes  # noqa: E402
from gdkd_seg.inspection import side_by_side  # noqa: E402

CONFIGS = osp.join(TOOLS, '..', 'configs', 'demo')
MODELS = {  # name -> (config, needs the teacher)
    'teacher': ('teacher_toy.py', False),
    'gdkd': ('gdkd_toy.py', True),
    'kd': ('kd_toy.py', True),
    'plain': ('plain_toy.py', False),
}
NUM_CLASSES = len(CITYSCAPES_CLASSES)


def run(script: str, *args: str) -> float:
    """Run ``tools/<script>``; returns its wall time in seconds; stops the demo with its output if it fails."""
    started = time.time()
    result = subprocess.run([sys.executable, osp.join(TOOLS, script), *args], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f'{script} {" ".join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}')
    return time.time() - started


def options(values: Dict[str, object]) -> List[str]:
    return ['--cfg-options'] + [f'{key}={value}' for key, value in values.items()] if values else []


def confusion(pred_dir: str, data_root: str) -> np.ndarray:
    """Confusion matrix (ground truth x prediction) over the val split from the PNGs tools/test.py --out wrote."""
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    for label_path in sorted(glob.glob(osp.join(data_root, 'gtFine', 'val', '*', '*_labelTrainIds.png'))):
        name = osp.basename(label_path).replace('_gtFine_labelTrainIds.png', '_leftImg8bit.png')
        label = cv2.imread(label_path, cv2.IMREAD_UNCHANGED).astype(np.int64)
        pred = cv2.imread(osp.join(pred_dir, name), cv2.IMREAD_UNCHANGED).astype(np.int64)
        valid = label != 255
        matrix += np.bincount(label[valid] * NUM_CLASSES + pred[valid],
                              minlength=NUM_CLASSES ** 2).reshape(NUM_CLASSES, NUM_CLASSES)
    return matrix


def per_class_iou(matrix: np.ndarray) -> np.ndarray:
    """IoU per class; NaN for classes absent from both ground truth and predictions (left out of the mean)."""
    union = matrix.sum(0) + matrix.sum(1) - np.diag(matrix)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(matrix.sum(1) > 0, np.diag(matrix) / union, np.nan)


def write_pictures(data_root: str, pred_dirs: Dict[str, str], out_dir: str, count: int) -> List[str]:
    """image | ground truth | teacher | GDKD student | plain student, for the first ``count`` val images."""
    os.makedirs(out_dir, exist_ok=True)
    written = []
    images = sorted(glob.glob(osp.join(data_root, 'leftImg8bit', 'val', '*', '*.png')))[:count]
    for image_path in images:
        name = osp.basename(image_path)
        label_path = image_path.replace('leftImg8bit', 'gtFine', 1).replace('_leftImg8bit.png',
                                                                              '_gtFine_labelTrainIds.png')
        panels = [('image', cv2.imread(image_path)),
                  ('ground truth', colorize_label(cv2.imread(label_path, cv2.IMREAD_UNCHANGED))[..., ::-1])]
        for title, model in (('teacher', 'teacher'), ('GDKD student', 'gdkd'), ('plain student', 'plain')):
            prediction = cv2.imread(osp.join(pred_dirs[model], name), cv2.IMREAD_UNCHANGED)
            panels.append((title, colorize_label(prediction)[..., ::-1]))
        path = osp.join(out_dir, name.replace('_leftImg8bit', ''))
        cv2.imwrite(path, side_by_side(panels))
        written.append(path)
    return written


def write_bar_chart(ious: Dict[str, np.ndarray], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(12, 4))
    width = 0.8 / len(ious)
    for index, (model, values) in enumerate(ious.items()):
        ax.bar(np.arange(NUM_CLASSES) + index * width, np.nan_to_num(values) * 100, width, label=model)
    ax.set_xticks(np.arange(NUM_CLASSES) + 0.4 - width / 2)
    ax.set_xticklabels(CITYSCAPES_CLASSES, rotation=45, ha='right')
    ax.set_ylabel('IoU (%)')
    ax.set_title('Per-class IoU on the toy city val split')
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_results(path: str, ious: Dict[str, np.ndarray], seconds: Dict[str, float], args) -> None:
    lines = [f'# Demo results (seed {args.seed})', '',
             f'Command: `python tools/demo.py --seed {args.seed}`. Toy city in `{args.data_root}`; mIoU over the '
             'classes present in the val split, from the predictions `tools/test.py --out` wrote; training time is '
             'the wall time of `tools/train.py`.', '',
             '| model | mIoU | training time (s) |', '|---|---|---|']
    lines += [f'| {model} | {np.nanmean(values) * 100:.2f} | '
              f'{"reused" if np.isnan(seconds[model]) else f"{seconds[model]:.0f}"} |' for model, values in ious.items()]
    lines += ['', '| class | ' + ' | '.join(ious) + ' |', '|---|' + '---|' * len(ious)]
    for index, name in enumerate(CITYSCAPES_CLASSES):
        lines.append(f'| {name} | ' + ' | '.join(
            '-' if np.isnan(values[index]) else f'{values[index] * 100:.1f}' for values in ious.values()) + ' |')
    with open(path, 'w', encoding='utf-8') as file:
        file.write('\n'.join(lines) + '\n')


def main() -> None:
    parser = argparse.ArgumentParser(description='Run the GDKD demo on the embedded toy city')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-root', default='data/toy_cityscapes')
    parser.add_argument('--seed', type=int, default=0, help='training seed of all four models')
    parser.add_argument('--teacher-iters', type=int, help='override the teacher config\'s iterations')
    parser.add_argument('--student-iters', type=int, help='override the students\' iterations')
    parser.add_argument('--pictures', type=int, default=4, help='val images to draw')
    parser.add_argument('--analysis-images', type=int, default=20,
                        help='val images the teacher analysis and the GDKD term maps go over')
    parser.add_argument('--teacher-ckpt', help='reuse a trained demo teacher (skips step 2), e.g. to rerun the '
                        'students with other seeds')
    parser.add_argument('--cfg-options', nargs='*', default=[], help='extra key=value options for every run')
    args = parser.parse_args()

    if not osp.isdir(args.data_root):
        print(f'[demo] generating the toy city into {args.data_root}')
        make_toy_cityscapes(args.data_root, progress=False)
    teacher_ckpt = args.teacher_ckpt or osp.join(args.work_dir, 'teacher', 'last.pth')
    common = {'randomness.seed': args.seed}
    for split in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        common[f'{split}.dataset.data_root'] = args.data_root
    extra = dict(option.split('=', 1) for option in args.cfg_options)

    seconds, pred_dirs, ious, checkpoints = {}, {}, {}, {}
    for model, (config, needs_teacher) in MODELS.items():
        iters = args.teacher_iters if model == 'teacher' else args.student_iters
        model_options = dict(common, **extra)
        if iters:
            model_options.update({'train_cfg.max_iters': iters, 'train_cfg.val_interval': iters,
                                  'param_scheduler.0.end': iters, 'default_hooks.checkpoint.interval': iters})
        if needs_teacher:
            model_options['model.teacher_ckpt'] = teacher_ckpt
        work_dir = osp.join(args.work_dir, model)
        if model == 'teacher' and args.teacher_ckpt:
            seconds[model], checkpoint = float('nan'), args.teacher_ckpt
        else:
            print(f'[demo] training {model} ({config})', flush=True)
            seconds[model] = run('train.py', osp.join(CONFIGS, config), '--work-dir', work_dir,
                                 *options(model_options))
            checkpoint = open(osp.join(work_dir, 'last_checkpoint')).read().strip()
        if model == 'teacher' and not args.teacher_ckpt:
            os.replace(checkpoint, teacher_ckpt)
            checkpoint = teacher_ckpt
        checkpoints[model] = checkpoint
        pred_dirs[model] = osp.join(work_dir, 'predictions')
        test_options = dict(common, **extra)
        print(f'[demo] evaluating {model}', flush=True)
        run('test.py', osp.join(CONFIGS, config), checkpoint, '--work-dir', work_dir, '--out', pred_dirs[model],
            *options(test_options))
        ious[model] = per_class_iou(confusion(pred_dirs[model], args.data_root))
        print(f'[demo] {model}: mIoU {np.nanmean(ious[model]) * 100:.2f} ({seconds[model]:.0f} s training)')

    print('[demo] analysing the teacher and the GDKD student\'s disagreement with it', flush=True)
    inspection = ['--max-images', str(args.analysis_images), '--pictures', str(args.pictures),
                  *options(dict(common, **extra))]
    run('analyze_teacher.py', osp.join(CONFIGS, 'teacher_toy.py'), checkpoints['teacher'], '--out',
        osp.join(args.work_dir, 'teacher_analysis'), *inspection)
    run('visualize_distill.py', osp.join(CONFIGS, 'gdkd_toy.py'), checkpoints['gdkd'], '--out',
        osp.join(args.work_dir, 'gdkd_terms'), *inspection, f'model.teacher_ckpt={teacher_ckpt}')
    write_results(osp.join(args.work_dir, 'results.md'), ious, seconds, args)
    with open(osp.join(args.work_dir, 'results.md'), 'a', encoding='utf-8') as results:
        for title, path in (
                ('What the teacher knows (`tools/analyze_teacher.py`, pictures in `teacher_analysis/`)',
                 'teacher_analysis/per_class.md'),
                ('', 'teacher_analysis/recommendation.txt'),
                ('Where the GDKD student still disagrees (`tools/visualize_distill.py`, pictures in `gdkd_terms/`)',
                 'gdkd_terms/terms.md')):
            results.write(f'\n## {title}\n\n' if title else '\n')
            results.write(open(osp.join(args.work_dir, path), encoding='utf-8').read())
    with open(osp.join(args.work_dir, 'results.json'), 'w', encoding='utf-8') as file:
        json.dump({model: {'mIoU': float(np.nanmean(values)), 'per_class_iou': np.nan_to_num(values).tolist(),
                           'train_seconds': seconds[model]} for model, values in ious.items()}, file, indent=1)
    write_pictures(args.data_root, pred_dirs, osp.join(args.work_dir, 'pictures'), args.pictures)
    write_bar_chart(ious, osp.join(args.work_dir, 'per_class_iou.png'))
    print(f'[demo] wrote {osp.join(args.work_dir, "results.md")}, pictures/ and per_class_iou.png')


if __name__ == '__main__':
    main()
