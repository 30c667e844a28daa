"""A fast variant of README's demo (`python tools/demo.py`): every stage end to end on a tiny toy city."""
import json
import os.path as osp

import cv2

from conftest import run_tool


def test_demo_runs_end_to_end(toy_data_root, tmp_path):
    work_dir = str(tmp_path / 'demo')
    small = [f'{split}.{key}={value}' for split in ('train_dataloader', 'val_dataloader', 'test_dataloader')
             for key, value in (('batch_size', 2), ('num_workers', 0), ('persistent_workers', False))]
    result = run_tool('demo.py', '--work-dir', work_dir, '--data-root', toy_data_root, '--teacher-iters', '2',
                      '--student-iters', '2', '--pictures', '2', '--cfg-options', *small)
    assert 'wrote' in result.stdout

    results = json.load(open(osp.join(work_dir, 'results.json')))
    assert list(results) == ['teacher', 'gdkd', 'kd', 'plain']
    for model, values in results.items():
        assert 0.0 <= values['mIoU'] <= 1.0 and len(values['per_class_iou']) == 19, model
        assert values['train_seconds'] > 0
    table = open(osp.join(work_dir, 'results.md')).read()
    assert all(f'| {model} |' in table for model in results) and '| road |' in table

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
    # the teacher the students learnt from is the one the demo trained
    assert osp.isfile(osp.join(work_dir, 'teacher', 'last.pth'))
