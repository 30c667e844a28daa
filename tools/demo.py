"""The demo: the whole toolkit on the embedded toy city, end to end, on 2 CPU cores, as an instance of the
reproduction harness (``tools/reproduce.py``) on the table ``configs/demo/demo.yaml``.

    python tools/demo.py [--jobs 2] [--seeds 0 1 2] [--work-dir work_dirs/demo]

1. generates the toy city into ``data/toy_cityscapes`` (skipped when present);
2. runs the table with the harness: a teacher trained once (``configs/demo/teacher_toy.py``: the real DeepLabV3
   teacher config, shrunk), then the same small student without distillation and distilled with KD, GDKD, DIST and
   GDKD + DIST on the identical schedule (``configs/demo/*_toy.py``: they inherit the Cityscapes configs), each
   over the seeds, up to ``--jobs`` trainings at once; each run is evaluated with ``tools/test.py``; a rerun skips
   finished runs and resumes interrupted ones. The harness writes ``table.md`` / ``table.csv`` / ``table.png``
   (mIoU mean ± std over the seeds, delta to the plain student);
3. from the predictions ``tools/test.py --out`` wrote: ``results.md`` (that table, training times, per-class IoU),
   ``results.json``, pictures (image | ground truth | teacher | GDKD student | plain student) and a per-class IoU
   bar chart;
4. analyses the teacher's predictive distribution (``tools/analyze_teacher.py``: ``teacher_analysis/``) and maps
   the GDKD terms between it and the GDKD student (``tools/visualize_distill.py``: ``gdkd_terms/``) on the first
   ``--analysis-images`` val images, their tables appended to ``results.md``.

Every training, evaluation and analysis runs the real command-line tools in subprocesses, as a user would.
"""
import argparse
import dataclasses
import glob
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, List

import cv2
import numpy as np

TOOLS = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, osp.join(TOOLS, '..'))
from gdkd_seg.datasets.toy_cityscapes import (CITYSCAPES_CLASSES, GENERATOR_VERSION, STAMP_FILE,  # noqa: E402
                                             colorize_label, generator_version, make_toy_cityscapes)
from gdkd_seg.inspection import side_by_side  # noqa: E402
from gdkd_seg.reproduce import Launcher, Table, collect, execute, load_table, write_report  # noqa: E402
from gdkd_seg.reproduce.runs import cfg_options  # noqa: E402

CONFIGS = osp.join(TOOLS, '..', 'configs', 'demo')
TABLE = osp.join(CONFIGS, 'demo.yaml')
# The rows the demo's pictures and analyses are drawn from (the table may have more)
TEACHER, GDKD, PLAIN = 'teacher', 'gdkd', 'plain'
NUM_CLASSES = len(CITYSCAPES_CLASSES)


def run(script: str, *args: str) -> None:
    """Run ``tools/<script>``; stops the demo with its output if it fails."""
    result = subprocess.run([sys.executable, osp.join(TOOLS, script), *args], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f'{script} {" ".join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}')


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
    """IoU per class as MMSeg's IoUMetric computes it: NaN for a class absent from both ground truth and predictions
    (left out of the mean), so that the mean is the mIoU ``tools/test.py`` reported."""
    union = matrix.sum(0) + matrix.sum(1) - np.diag(matrix)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(union > 0, np.diag(matrix) / union, np.nan)


def mean_over_seeds(ious: List[np.ndarray]) -> np.ndarray:
    """Per-class mean of the seeds' IoUs over the seeds where the class counted; NaN where it never did."""
    stacked = np.stack(ious)
    counted = (~np.isnan(stacked)).sum(0)
    return np.where(counted > 0, np.nansum(stacked, 0) / np.maximum(counted, 1), np.nan)


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
        for title, row in (('teacher', TEACHER), ('GDKD student', GDKD), ('plain student', PLAIN)):
            prediction = cv2.imread(osp.join(pred_dirs[row], name), cv2.IMREAD_UNCHANGED)
            panels.append((title, colorize_label(prediction)[..., ::-1]))
        path = osp.join(out_dir, name.replace('_leftImg8bit', ''))
        cv2.imwrite(path, side_by_side(panels))
        written.append(path)
    return written


def write_per_class_chart(ious: Dict[str, np.ndarray], path: str) -> None:
    """Per-class IoU of each row (mean over its seeds), one bar group per class."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(12, 4))
    width = 0.8 / len(ious)
    for index, (row, values) in enumerate(ious.items()):
        ax.bar(np.arange(NUM_CLASSES) + index * width, np.nan_to_num(values) * 100, width, label=row)
    ax.set_xticks(np.arange(NUM_CLASSES) + 0.4 - width / 2)
    ax.set_xticklabels(CITYSCAPES_CLASSES, rotation=45, ha='right')
    ax.set_ylabel('IoU (%)')
    ax.set_title('Per-class IoU on the toy city val split (mean over seeds)')
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_results(path: str, table_md: str, ious: Dict[str, np.ndarray], seconds: Dict[str, List[float]],
                  command: str) -> None:
    """results.md: the harness's table, the training times, and the per-class IoU of each row."""
    lines = ['# Demo results', '',
             f'Command: `{command}`. mIoU over the classes present in the val split or predicted (MMSeg\'s '
             'IoUMetric), as `tools/test.py` reported it; per-class IoU from the predictions it wrote '
             '(`--out`), mean over the seeds; training time is the wall time of `tools/train.py`.', '',
             '## mIoU over seeds (written by the harness, `table.md`)', '',
             table_md.split('\n', 2)[2].strip(), '',
             '## Training time', '', '| row | seconds per run (mean over seeds) |', '|---|---|']
    lines += [f'| {row} | {np.mean(values):.0f} |' for row, values in seconds.items()]
    lines += ['', '## Per-class IoU (mean over seeds)', '',
              '| class | ' + ' | '.join(ious) + ' |', '|---|' + '---|' * len(ious)]
    for index, name in enumerate(CITYSCAPES_CLASSES):
        lines.append(f'| {name} | ' + ' | '.join(
            '-' if np.isnan(values[index]) else f'{values[index] * 100:.1f}' for values in ious.values()) + ' |')
    with open(path, 'w', encoding='utf-8') as file:
        file.write('\n'.join(lines) + '\n')


def with_demo_options(table: Table, args: argparse.Namespace) -> Table:
    """The table with the demo's options added to every row: the data root, the iterations of --teacher-iters /
    --student-iters (the schedule, validation and checkpoint follow), then --cfg-options."""
    common = {f'{split}.dataset.data_root': args.data_root
              for split in ('train_dataloader', 'val_dataloader', 'test_dataloader')}
    extra = dict(option.split('=', 1) for option in args.cfg_options)
    rows = []
    for row in table.rows:
        iters = args.teacher_iters if row.name == TEACHER else args.student_iters
        schedule = {'train_cfg.max_iters': iters, 'train_cfg.val_interval': iters, 'param_scheduler.0.end': iters,
                    'default_hooks.checkpoint.interval': iters} if iters else {}
        options = dict(row.cfg_options)
        for added in (common, {key: str(value) for key, value in schedule.items()}, extra):  # later ones win
            options.update(added)
        rows.append(dataclasses.replace(row, cfg_options=options))
    return dataclasses.replace(table, rows=tuple(rows))


def link_teacher(checkpoint: str, path: str) -> None:
    """Put the teacher's final checkpoint at ``path`` too (a hard link where possible), where the demo configs'
    ``model.teacher_ckpt`` default expects it (``work_dirs/demo/teacher/last.pth``)."""
    if osp.lexists(path):
        os.remove(path)
    try:
        os.link(checkpoint, path)
    except OSError:
        import shutil
        shutil.copyfile(checkpoint, path)


def main() -> None:
    parser = argparse.ArgumentParser(description='Run the GDKD demo on the embedded toy city')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-root', default='data/toy_cityscapes')
    parser.add_argument('--table', default=TABLE, help='the demo table (rows teacher, plain and gdkd are drawn)')
    parser.add_argument('--seeds', type=int, nargs='+', help='the students\' seeds (default: the table\'s, 0 1 2)')
    parser.add_argument('--jobs', type=int, default=2, help='trainings at once, sharing the cores')
    parser.add_argument('--teacher-iters', type=int, help='override the teacher config\'s iterations')
    parser.add_argument('--student-iters', type=int, help='override the students\' iterations')
    parser.add_argument('--pictures', type=int, default=4, help='val images to draw')
    parser.add_argument('--analysis-images', type=int, default=20,
                        help='val images the teacher analysis and the GDKD term maps go over')
    parser.add_argument('--cfg-options', nargs='*', default=[], help='extra key=value options for every run')
    args = parser.parse_args()

    if not osp.isdir(args.data_root):
        print(f'[demo] generating the toy city into {args.data_root}')
        make_toy_cityscapes(args.data_root, progress=False)
    elif (found := generator_version(args.data_root)) != GENERATOR_VERSION:
        # the demo's schedule is tuned on this version of the city; an older (or half-written) one trains otherwise
        sys.exit(f'[demo] {args.data_root} was not generated by this version of the toy-city generator (its '
                 f'{STAMP_FILE} says version {found}, this is version '
                 f'{GENERATOR_VERSION}); regenerate it: python tools/make_toy_cityscapes.py --out {args.data_root} '
                 '--overwrite (or delete the folder)')
    table = with_demo_options(load_table(args.table, args.seeds), args)
    missing = [name for name in (TEACHER, GDKD, PLAIN) if name not in [row.name for row in table.rows]]
    if missing:
        sys.exit(f'{args.table}: the demo draws the rows {TEACHER}, {GDKD} and {PLAIN}; missing: {", ".join(missing)}')
    failures = execute(table, args.work_dir, Launcher('none'), jobs=args.jobs)
    if failures:
        sys.exit('[demo] failed runs (rerun to retry them; finished runs are skipped):\n' + '\n'.join(failures))
    paths = write_report(table, args.work_dir)

    results = collect(table, args.work_dir)
    ious, seconds, summary = {}, {}, {}
    for row in table.rows:
        per_seed = {}
        for seed in row.seeds:
            result = results[row.name, seed]
            iou = per_class_iou(confusion(osp.join(args.work_dir, row.name, f'seed{seed}', 'predictions'),
                                          args.data_root))
            per_seed[seed] = {'mIoU': result['metrics'][table.metric],
                              'per_class_iou': [None if np.isnan(value) else float(value) for value in iou],
                              'train_seconds': result['train_seconds'], 'checkpoint': result['checkpoint']}
            ious.setdefault(row.name, []).append(iou)
        ious[row.name] = mean_over_seeds(ious[row.name])
        seconds[row.name] = [entry['train_seconds'] for entry in per_seed.values()]
        summary[row.name] = {'student': row.student, 'method': row.method, 'seeds': per_seed}
    teacher_ckpt = osp.join(args.work_dir, TEACHER, 'last.pth')
    link_teacher(results[TEACHER, table.row(TEACHER).seeds[0]]['checkpoint'], teacher_ckpt)
    gdkd_ckpt = results[GDKD, table.row(GDKD).seeds[0]]['checkpoint']

    print('[demo] analysing the teacher and the GDKD student\'s disagreement with it', flush=True)
    inspection = ['--max-images', str(args.analysis_images), '--pictures', str(args.pictures),
                  *cfg_options(dict(table.row(TEACHER).cfg_options))]
    run('analyze_teacher.py', table.row(TEACHER).config, teacher_ckpt, '--out',
        osp.join(args.work_dir, 'teacher_analysis'), *inspection)
    run('visualize_distill.py', table.row(GDKD).config, gdkd_ckpt, '--out', osp.join(args.work_dir, 'gdkd_terms'),
        *inspection, f'model.teacher_ckpt={teacher_ckpt}')
    with open(paths['markdown'], encoding='utf-8') as file:
        table_md = file.read()
    results_md = osp.join(args.work_dir, 'results.md')
    write_results(results_md, table_md, ious, seconds, 'python ' + ' '.join(sys.argv))
    with open(results_md, 'a', encoding='utf-8') as out:
        for title, path in (
                ('What the teacher knows (`tools/analyze_teacher.py`, pictures in `teacher_analysis/`)',
                 'teacher_analysis/per_class.md'),
                ('', 'teacher_analysis/recommendation.txt'),
                ('Where the GDKD student still disagrees (`tools/visualize_distill.py`, pictures in `gdkd_terms/`)',
                 'gdkd_terms/terms.md')):
            out.write(f'\n## {title}\n\n' if title else '\n')
            with open(osp.join(args.work_dir, path), encoding='utf-8') as part:
                out.write(part.read())
    with open(osp.join(args.work_dir, 'results.json'), 'w', encoding='utf-8') as file:
        json.dump(summary, file, indent=1)
    first_seed = {row.name: osp.join(args.work_dir, row.name, f'seed{row.seeds[0]}', 'predictions')
                  for row in table.rows}
    write_pictures(args.data_root, first_seed, osp.join(args.work_dir, 'pictures'), args.pictures)
    write_per_class_chart(ious, osp.join(args.work_dir, 'per_class_iou.png'))
    print(f'[demo] wrote {results_md}, results.json, {paths["markdown"]} / .csv / .png, pictures/ and '
          'per_class_iou.png')


if __name__ == '__main__':
    main()
