"""A fast variant of the demo (`make demo`, `python tools/reproduce/demo.py`): every stage end to end on a tiny toy
city, through the reproduction harness: the teacher, plain and GDKD rows of configs/demo/demo.yaml over two seeds,
two trainings at once, then a rerun that skips the finished runs and resumes one interrupted run. The demo's other
students (KD, DKD, DIST) train one iteration each in-process below."""
import csv
import json
import os
import os.path as osp
import uuid

import cv2
import numpy as np
import pytest
import yaml
from mmengine.config import Config
from mmengine.runner import Runner

from gdkd_seg.datasets.toy_cityscapes import STAMP_FILE, make_toy_cityscapes
from gdkd_seg.engine.distributed import syncbn_to_bn
from tests.support import config_path, fast_distill_options, run_tool, run_tool_here

ROWS = ['teacher', 'plain', 'gdkd']


def demo_table_with(rows, path: str) -> str:
    """The shipped demo table reduced to ``rows``, written to ``path`` (its configs still those of configs/demo)."""
    with open(config_path('demo', 'demo.yaml')) as file:
        table = yaml.safe_load(file)
    table['rows'] = [dict(row, compare_to=[name for name in row.get('compare_to', []) if name in rows])
                     for row in table['rows'] if row['name'] in rows]
    table['config_root'] = config_path('demo')
    with open(path, 'w') as file:
        yaml.safe_dump(table, file)
    return path


def test_demo_runs_the_table_through_the_harness(toy_data_root, tmp_path):
    work_dir = str(tmp_path / 'demo')
    small = [f'{split}.{key}={value}' for split in ('train_dataloader', 'val_dataloader', 'test_dataloader')
             for key, value in (('batch_size', 2), ('num_workers', 0), ('persistent_workers', False))]
    # a checkpoint after each of the 2 iterations, both kept: the interruption below resumes from the first
    small += ['default_hooks.checkpoint.interval=1', 'default_hooks.checkpoint.max_keep_ckpts=2']
    table = demo_table_with(ROWS, str(tmp_path / 'demo.yaml'))
    demo = ['--table', table, '--work-dir', work_dir, '--data-root', toy_data_root, '--teacher-iters', '2',
            '--student-iters', '2', '--seeds', '0', '1', '--jobs', '2', '--pictures', '2', '--cfg-options', *small]
    first = run_tool('reproduce/demo.py', *demo)
    assert 'wrote' in first.stdout
    assert first.stdout.count(': training') == 1 + 2 * 2  # the teacher once, two students over two seeds

    results = json.load(open(osp.join(work_dir, 'results.json')))
    assert list(results) == ROWS
    for row, values in results.items():
        assert list(values['seeds']) == (['0'] if row == 'teacher' else ['0', '1']), row
        for seed, run in values['seeds'].items():
            assert 0.0 <= run['mIoU'] <= 100.0 and len(run['per_class_iou']) == 19, (row, seed)
            assert run['train_seconds'] > 0
            assert run['checkpoint'] == osp.join(work_dir, row, f'seed{seed}', 'iter_2.pth')
            # the per-class IoU drawn from the predictions averages to the mIoU tools/test.py reported (2 decimals)
            assert abs(np.mean([iou for iou in run['per_class_iou'] if iou is not None]) * 100 - run['mIoU']) < 0.006

    # the harness's summary: a row per table row, per-seed values, mean ± std, delta to the plain student
    with open(osp.join(work_dir, 'table.csv'), newline='') as file:
        lines = {line['row']: line for line in csv.DictReader(file)}
    assert list(lines) == ROWS
    for row in ROWS:
        seeds = [0] if row == 'teacher' else [0, 1]
        values = [results[row]['seeds'][str(seed)]['mIoU'] for seed in seeds]
        assert [float(lines[row][f'seed_{seed}']) for seed in seeds] == [round(value, 2) for value in values]
        assert float(lines[row]['mIoU_mean']) == round(float(np.mean(values)), 2)
        if row == 'teacher':
            assert lines[row]['mIoU_std'] == ''
        else:
            assert float(lines[row]['mIoU_std']) == round(float(np.std(values, ddof=1)), 2)
        if row == 'gdkd':  # paired with the plain student's seeds
            plain = [results['plain']['seeds'][seed]['mIoU'] for seed in ('0', '1')]
            differences = np.subtract(values, plain)
            assert float(lines[row]['vs_baseline_mean']) == round(float(differences.mean()), 2)
            assert int(lines[row]['vs_baseline_seeds_above']) == int((differences > 0).sum())
        else:
            assert lines[row]['vs_baseline_mean'] == ''
    assert cv2.imread(osp.join(work_dir, 'table.png')) is not None
    table = open(osp.join(work_dir, 'results.md')).read()
    assert '| DeepLabV3-R18 width 8 | GDKD |' in table and '| baseline |' in table
    assert all(f'| {row} |' in table for row in ROWS) and '| road |' in table

    pictures = sorted(osp.join(work_dir, 'pictures', name) for name in ('testburg_000000_000019.png',
                                                                         'testburg_000001_000019.png'))
    for path in pictures:
        picture = cv2.imread(path)
        # image | ground truth | teacher | GDKD student | plain student, side by side at the toy size
        assert picture is not None and picture.shape == (64, 5 * 128, 3), path
    assert cv2.imread(osp.join(work_dir, 'per_class_iou.png')) is not None
    # the teacher analysis and the GDKD term maps, their tables in results.md
    assert 'Recommended GDKDLoss k=' in table and '| mass KL |' in table and '| top-0.9 set size |' in table
    for path in ('teacher_analysis/per_class.csv', 'teacher_analysis/cumulative_mass.png',
                 'teacher_analysis/pictures/testburg_000000_000019_leftImg8bit.png',
                 'gdkd_terms/pictures/testburg_000001_000019_leftImg8bit.png'):
        assert osp.isfile(osp.join(work_dir, path)), path
    # the students learnt from the teacher the demo trained, also found where the demo configs expect it
    settings = json.load(open(osp.join(work_dir, 'gdkd', 'seed1', 'settings.json')))
    assert settings['cfg_options']['model.teacher_ckpt'] == osp.join(work_dir, 'teacher', 'seed0', 'iter_2.pth')
    assert osp.samefile(osp.join(work_dir, 'teacher', 'last.pth'), osp.join(work_dir, 'teacher', 'seed0', 'iter_2.pth'))

    # interrupt gdkd/seed1 after its first iteration: its final checkpoint and the harness's markers are gone
    interrupted = osp.join(work_dir, 'gdkd', 'seed1')
    for name in ('iter_2.pth', 'trained.json', 'result.json'):
        os.remove(osp.join(interrupted, name))
    with open(osp.join(interrupted, 'last_checkpoint'), 'w') as file:
        file.write(osp.join(interrupted, 'iter_1.pth'))
    finished = {(row, seed): os.stat(osp.join(work_dir, row, f'seed{seed}', 'result.json')).st_mtime_ns
                for row in ROWS for seed in ([0] if row == 'teacher' else [0, 1]) if (row, seed) != ('gdkd', 1)}

    second = run_tool('reproduce/demo.py', *demo)
    assert second.stdout.count(': training') == 1 and 'gdkd/seed1: training (resuming' in second.stdout
    assert 'resumed epoch: 0, iter: 1' in open(osp.join(interrupted, 'train.log')).read()
    assert osp.isfile(osp.join(interrupted, 'iter_2.pth')) and osp.isfile(osp.join(interrupted, 'result.json'))
    for (row, seed), mtime in finished.items():  # the finished runs were skipped, their results untouched
        assert os.stat(osp.join(work_dir, row, f'seed{seed}', 'result.json')).st_mtime_ns == mtime, (row, seed)
    assert json.load(open(osp.join(work_dir, 'results.json')))['gdkd']['seeds']['1']['train_seconds'] > 0


@pytest.mark.parametrize('config, cityscapes, logged', [
    ('kd_toy.py', None, ['distill.loss_kd']),
    ('dist_toy.py', 'baselines/deeplabv3_r101_to_r18_dist_cityscapes.py', ['distill.loss_dist']),
    ('dkd_toy.py', 'baselines/deeplabv3_r101_to_r18_dkd_cityscapes.py', ['distill.loss_dkd'])])
def test_demo_students_distil_as_their_cityscapes_configs(config, cityscapes, logged, toy_data_root,
                                                          toy_teacher_ckpt, tmp_path):
    """The demo rows not trained above: each trains an iteration, logging its losses, with the loss settings of the
    Cityscapes config it stands for."""


    cfg = Config.fromfile(config_path('demo', config))
    if cityscapes is not None:
        assert cfg.model.distill_losses == Config.fromfile(config_path(cityscapes)).model.distill_losses
    cfg.merge_from_dict(fast_distill_options(toy_data_root, toy_teacher_ckpt))
    cfg.merge_from_dict({'work_dir': str(tmp_path), 'experiment_name': f'toy_{uuid.uuid4().hex}',
                         'train_cfg.max_iters': 1})
    syncbn_to_bn(cfg.model)
    runner = Runner.from_cfg(cfg)
    runner.train()
    scalars = runner.message_hub.log_scalars
    for name in logged:
        assert np.isfinite(scalars[f'train/{name}'].current()), name


def test_demo_refuses_a_toy_city_of_another_generator_version(tmp_path, monkeypatch):
    """Its schedule is tuned on this version of the city: an older folder (no stamp) is named with the fix, before
    any run starts."""
    data_root = str(tmp_path / 'old_city')
    make_toy_cityscapes(data_root, num_train=2, num_val=1, size=(32, 64), seed=0, progress=False)
    os.remove(os.path.join(data_root, STAMP_FILE))
    work_dir = str(tmp_path / 'demo')
    result = run_tool_here('reproduce/demo.py', '--work-dir', work_dir, '--data-root', data_root,
                           monkeypatch=monkeypatch)
    assert result.returncode != 0
    assert 'not generated by this version of the toy-city generator' in result.stderr
    assert f'delete the folder, then python tools/dataset_converters/make_toy_cityscapes.py --out {data_root}' \
        in result.stderr
    assert not os.path.exists(work_dir)

