"""The command-line tools end to end, in subprocesses as a user runs them, on the toy city."""
import glob
import hashlib
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmseg.apis import inference_model, init_model

from gdkd_seg.checkpoint.loading import load_checkpoint_file
from gdkd_seg.utils.files import host_tag
from tests.support import cfg_options, config_path, run_tool, run_tool_here, tiny_data_options


def not_utf8(name: str) -> str:
    """``name`` with a byte that is not UTF-8 (0xff), as Python holds such a file name: a surrogate escape."""
    return name + os.fsdecode(b'\xff')


@pytest.fixture(scope='module')
def trained_teacher(toy_data_root, tmp_path_factory):
    """tools/train.py on the demo teacher config (MMSeg's SyncBN DeepLabV3) for 1 iteration, then --resume to 2.

    Every path holds a byte that is not UTF-8: the dataset's folder, an image and its label map of each split (read
    by the data check, with ``--data-check full``, and by the pipeline), the work dir (log files,
    ``last_checkpoint``, checkpoints); printed to a terminal that cannot show the byte."""
    folder = tmp_path_factory.mktemp('teacher_run')
    data_root = shutil.copytree(toy_data_root, str(folder / not_utf8('city_')))
    for split in ('train', 'val'):
        image = sorted(glob.glob(osp.join(glob.escape(data_root), 'leftImg8bit', split, '*', '*.png')))[0]
        label = image.replace('leftImg8bit', 'gtFine', 1).replace('_leftImg8bit.png', '_gtFine_labelTrainIds.png')
        os.rename(image, image.replace('_leftImg8bit.png', not_utf8('') + '_leftImg8bit.png'))
        os.rename(label, label.replace('_gtFine_labelTrainIds.png', not_utf8('') + '_gtFine_labelTrainIds.png'))
    work_dir = str(folder / not_utf8('run_'))
    options = dict(tiny_data_options(data_root), **{
        'train_cfg.max_iters': 1, 'train_cfg.val_interval': 100, 'default_hooks.checkpoint.interval': 1,
        'default_hooks.logger.interval': 1})
    strict_terminal = dict(os.environ, PYTHONIOENCODING='utf-8:strict')  # cannot show such a byte as it is
    first = run_tool('train.py', config_path('demo', 'teacher_toy.py'), '--work-dir', work_dir, '--data-check',
                     'full', *cfg_options(options), env=strict_terminal)
    options['train_cfg.max_iters'] = 2
    resumed = run_tool('train.py', config_path('demo', 'teacher_toy.py'), '--work-dir', work_dir, '--resume',
                       *cfg_options(options), env=strict_terminal)
    return work_dir, first.stdout + first.stderr, resumed.stdout + resumed.stderr


def test_single_process_training_converts_syncbn(trained_teacher):
    work_dir, log, _ = trained_teacher
    assert 'converted' in log and 'SyncBN norm configs to BN' in log
    assert 'Saving checkpoint at 1 iterations' in log


def test_resume_continues_from_the_checkpoint(trained_teacher):
    work_dir, _, resumed_log = trained_teacher
    assert 'resumed epoch: 0, iter: 1' in resumed_log
    checkpoint = load_checkpoint_file(osp.join(work_dir, 'iter_2.pth'))
    assert checkpoint['meta']['iter'] == 2
    assert 'Weights only load failed' not in resumed_log


def test_paths_that_are_not_utf8_are_read_and_logged(trained_teacher):
    work_dir, log, resumed_log = trained_teacher
    assert 'train_dataloader: checked 6 image/label pairs' in log
    assert 'Logging error' not in log + resumed_log
    log_files = glob.glob(osp.join(glob.escape(work_dir), '*', '*.log'))
    assert len(log_files) == 2 and all('run_\\udcff' in open(path).read() for path in log_files)


def test_distill_then_test_without_the_teacher(toy_data_root, trained_teacher, tmp_path, monkeypatch):
    teacher_dir, _, _ = trained_teacher  # a work dir whose name is not UTF-8: so is the teacher_ckpt path
    options = dict(tiny_data_options(toy_data_root), **{
        'train_cfg.max_iters': 1, 'default_hooks.checkpoint.interval': 1,
        # the teacher checkpoint is an MMEngine training checkpoint (message hub and all)
        'model.teacher_ckpt': osp.join(teacher_dir, 'iter_2.pth')})
    student_dir = str(tmp_path / not_utf8('student_'))
    run_tool('train.py', config_path('demo', 'gdkd_toy.py'), '--work-dir', student_dir, *cfg_options(options))
    checkpoint = osp.join(student_dir, 'iter_1.pth')

    # a teacher that does not exist proves evaluation never builds it
    test_options = dict(tiny_data_options(toy_data_root), **{'model.teacher_ckpt': '/nonexistent.pth'})
    # a process of its own: MMEngine's visualizer is one per process, and --show-dir sets where it saves
    result = run_tool('test.py', config_path('demo', 'gdkd_toy.py'), checkpoint, '--work-dir',
                      str(tmp_path / 'test'), '--show-dir', str(tmp_path / 'show'),
                      *cfg_options(dict(test_options, **{'default_hooks.visualization.interval': 1})))
    assert 'mIoU' in result.stdout
    assert len(glob.glob(str(tmp_path / 'show' / '**' / '*.png'), recursive=True)) == 2

    tta = run_tool_here('test.py', config_path('demo', 'gdkd_toy.py'), checkpoint, '--tta', '--work-dir',
                        str(tmp_path / 'tta'), *cfg_options(test_options), monkeypatch=monkeypatch)
    assert 'mIoU' in tta.stdout


def test_export_student_round_trip_in_plain_mmseg(toy_data_root, toy_teacher_ckpt, trained_teacher, tmp_path):
    options = dict(tiny_data_options(toy_data_root), **{
        'train_cfg.max_iters': 1, 'default_hooks.checkpoint.interval': 1, 'model.teacher_ckpt': toy_teacher_ckpt})
    run_tool('train.py', config_path('demo', 'gdkd_toy.py'), '--work-dir', str(tmp_path / 'run'),
             *cfg_options(options))
    exported = run_tool('model_converters/export_student.py', config_path('demo', 'gdkd_toy.py'),
                        str(tmp_path / 'run' / 'iter_1.pth'), str(tmp_path / 'export'))
    # the demo's class-weighted loss is a gdkd_seg type: the export names MMSeg's own, and says so
    assert "gdkd_seg's ClassWeightedCrossEntropyLoss" in exported.stdout
    exported_model = str(Config.fromfile(str(tmp_path / 'export' / 'student_config.py')).model)
    assert 'ClassWeightedCrossEntropyLoss' not in exported_model and 'class_weight' not in exported_model
    image = sorted(glob.glob(osp.join(toy_data_root, 'leftImg8bit', 'val', '*', '*.png')))[0]

    # plain MMSeg, in a process that never imports gdkd_seg
    plain = (
        'import sys, torch\n'
        'from mmseg.apis import init_model, inference_model\n'
        f'model = init_model({str(tmp_path / "export" / "student_config.py")!r}, '
        f'{str(tmp_path / "export" / "student.pth")!r}, device="cpu")\n'
        'assert "gdkd_seg" not in sys.modules\n'
        f'torch.save(inference_model(model, {image!r}).seg_logits.data, {str(tmp_path / "plain.pt")!r})\n')
    result = subprocess.run([sys.executable, '-c', plain], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]

    distiller = init_model(config_path('demo', 'gdkd_toy.py'), str(tmp_path / 'run' / 'iter_1.pth'), device='cpu',
                           cfg_options={'model.teacher': None, 'model.teacher_ckpt': None})
    ours = inference_model(distiller, image).seg_logits.data
    assert torch.allclose(torch.load(str(tmp_path / 'plain.pt')), ours, atol=1e-5)


def test_run_start_names_the_teacher_warns_on_nothing_to_resume_and_cleans_dead_saves(toy_data_root,
                                                                                        toy_teacher_ckpt, tmp_path):
    """A distillation started with --resume in a work dir without a checkpoint (a mistyped --work-dir)."""

    work_dir = tmp_path / 'typo'
    work_dir.mkdir()
    process = subprocess.Popen([sys.executable, '-c', 'pass'])
    process.wait()  # its pid is now that of a dead process
    stale = work_dir / f'.iter_4.pth.{host_tag()}.pid{process.pid}.0123abcd.tmp'
    stale.write_bytes(b'half a checkpoint')
    options = dict(tiny_data_options(toy_data_root), **{
        'train_cfg.max_iters': 1, 'train_cfg.val_interval': 100, 'model.teacher_ckpt': toy_teacher_ckpt})
    result = run_tool('train.py', config_path('demo', 'gdkd_toy.py'), '--work-dir', str(work_dir), '--resume',
                      *cfg_options(options))
    log = result.stdout + result.stderr
    assert f"--resume: no checkpoint to resume from in the work dir '{work_dir}'" in log
    assert f'removed {stale}: a half-written temporary file' in log and not stale.exists()
    with open(toy_teacher_ckpt, 'rb') as file:
        digest = hashlib.sha256(file.read()).hexdigest()[:12]
    assert f'teacher weights loaded from {toy_teacher_ckpt} (' in log and f'sha256 {digest})' in log
    assert 'image pixels not decoded, --data-check full decodes them' in log
    assert osp.isfile(work_dir / 'iter_1.pth')
