"""Reliability of training runs: a resumed run equals the uninterrupted one, a crash while saving loses nothing, a
non-finite loss stops training by name, and bad input (teacher URL, config, options, pickled checkpoints) fails
early and clearly. The data checks: tests/datasets/test_data_checks.py; saving: tests/checkpoint/test_saving.py."""
import glob
import json
import os
import os.path as osp
import re
import resource
import shutil
import signal
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS

from gdkd_seg.checkpoint.loading import CheckpointLoadError, load_checkpoint_file
from gdkd_seg.engine.distributed import syncbn_to_bn
from gdkd_seg.engine.hooks import NonFiniteLossError
from gdkd_seg.losses import GDKDLoss
from tests.support import (
    REPO_ROOT,
    cfg_options,
    config_path,
    fast_distill_options,
    load_tool,
    run_tool,
    tiny_data_options,
    toy_runner,
)

TOY_CONFIG = config_path('demo', 'gdkd_toy.py')
pytestmark = pytest.mark.usefixtures('mmseg_scope')


def distiller_config(teacher_ckpt: str):
    """The demo distiller's model config (SyncBN as BN, as in one process) with ``teacher_ckpt``."""
    cfg = Config.fromfile(TOY_CONFIG)
    cfg.merge_from_dict({'model.teacher_ckpt': teacher_ckpt})
    syncbn_to_bn(cfg.model)
    return cfg.model


def copy_run(work_dir: str, destination: str) -> str:
    """A copy of a training work_dir whose ``last_checkpoint`` points into the copy."""
    shutil.copytree(work_dir, destination)
    with open(osp.join(destination, 'last_checkpoint')) as file:
        last = file.read().strip()
    with open(osp.join(destination, 'last_checkpoint'), 'w') as file:
        file.write(osp.join(destination, osp.basename(last)))
    return destination


def logged_scalars(work_dir: str, newest_run_only: bool = False) -> dict:
    """``iteration -> logged training scalars`` from MMEngine's ``vis_data/scalars.json`` files."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    records = {}
    for path in files[-1:] if newest_run_only else files:
        with open(path) as file:
            for line in file:
                record = json.loads(line)
                if 'loss' in record:
                    records[record['iter']] = record
    return records


# --- resume without loss ------------------------------------------------------------------------------------------

# Same schedule end in every run, so the resumed PolyLR is the uninterrupted one's.
RESUME_OPTIONS = {'randomness.seed': 0, 'randomness.deterministic': True, 'param_scheduler.0.end': 6,
                  'custom_hooks.0.warmup_iters': 4, 'default_hooks.checkpoint.interval': 2}


@pytest.fixture(scope='module')
def resume_options(toy_data_root, toy_teacher_ckpt) -> dict:
    return dict(fast_distill_options(toy_data_root, toy_teacher_ckpt), **RESUME_OPTIONS)


@pytest.fixture(scope='module')
def interrupted_run(resume_options, tmp_path_factory) -> str:
    """A run stopped after its iteration-2 checkpoint (left pristine: users copy it)."""
    work_dir = str(tmp_path_factory.mktemp('interrupted') / 'run')
    run_tool('train.py', TOY_CONFIG, '--work-dir', work_dir,
             *cfg_options(dict(resume_options, **{'train_cfg.max_iters': 2})))
    return work_dir


def test_resume_continues_exactly_as_the_uninterrupted_run(resume_options, interrupted_run, tmp_path):
    full_dir = str(tmp_path / 'uninterrupted')
    run_tool('train.py', TOY_CONFIG, '--work-dir', full_dir,
             *cfg_options(dict(resume_options, **{'train_cfg.max_iters': 6})))
    work_dir = copy_run(interrupted_run, str(tmp_path / 'resumed'))
    resumed = run_tool('train.py', TOY_CONFIG, '--work-dir', work_dir, '--resume',
                       *cfg_options(dict(resume_options, **{'train_cfg.max_iters': 6})))
    log = resumed.stdout + resumed.stderr
    assert 'resumed epoch: 0, iter: 2' in log
    assert 'resumed the random states saved at iteration 2' in log

    full, after_resume = logged_scalars(full_dir), logged_scalars(work_dir, newest_run_only=True)
    assert sorted(full) == [1, 2, 3, 4, 5, 6]
    assert sorted(after_resume) == [3, 4, 5, 6]  # the iteration count continues from the checkpoint
    # the warm-up factor continues (iteration i of 4: min(1, i / 4))
    assert [after_resume[i]['distill_factor'] for i in (3, 4, 5, 6)] == [0.75, 1.0, 1.0, 1.0]
    for iteration in (3, 4, 5, 6):
        for key, value in full[iteration].items():
            if key not in ('time', 'data_time', 'eta', 'memory'):
                # lr: the scheduler state; the losses: the batches (data order, augmentation), dropout, weights
                assert after_resume[iteration][key] == value, f'iteration {iteration}: {key} differs'

    final, resumed_final = (load_checkpoint_file(osp.join(folder, 'iter_6.pth'))
                            for folder in (full_dir, work_dir))
    assert resumed_final['meta']['iter'] == 6
    for key, value in final['state_dict'].items():
        assert torch.equal(resumed_final['state_dict'][key], value), f'student weight {key} differs'
    for index, state in final['optimizer']['state'].items():  # the optimizer's moments (AdamW in the demo)
        for name, value in state.items():
            assert torch.equal(resumed_final['optimizer']['state'][index][name], value), f'{index}.{name} differs'
    assert resumed_final['param_schedulers'] == final['param_schedulers']


# --- crash-safe checkpoints ---------------------------------------------------------------------------------------

def test_crash_while_saving_keeps_the_previous_checkpoint(resume_options, interrupted_run, tmp_path):
    """The disk fills up while the iteration-4 checkpoint is written (a file-size limit makes writes fail part-way,
    as on a full disk). The demo config keeps one checkpoint: MMEngine alone would delete iter_2.pth first and leave
    a truncated iter_4.pth, with last_checkpoint naming the deleted file."""
    work_dir = copy_run(interrupted_run, str(tmp_path / 'crashed'))
    previous = {name: open(osp.join(work_dir, name), 'rb').read() for name in ('iter_2.pth', 'last_checkpoint')}
    limit = len(previous['iter_2.pth']) // 2

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run(
        [sys.executable, osp.join(REPO_ROOT, 'tools', 'train.py'), TOY_CONFIG, '--work-dir', work_dir, '--resume',
         *cfg_options(dict(resume_options, **{'train_cfg.max_iters': 4}))],
        cwd=REPO_ROOT, capture_output=True, text=True, preexec_fn=limit_file_size)
    log = result.stdout + result.stderr
    assert result.returncode != 0 and 'Saving checkpoint at 4 iterations' in log, log[-3000:]
    files = sorted(name for name in os.listdir(work_dir) if osp.isfile(osp.join(work_dir, name)))
    # no partial iter_4.pth, no temporary file (the lock file stays; its lock went with the process)
    assert files == ['.train.lock', 'gdkd_toy.py', 'iter_2.pth', 'last_checkpoint']
    for name, content in previous.items():
        assert open(osp.join(work_dir, name), 'rb').read() == content, f'{name} changed'
    assert load_checkpoint_file(osp.join(work_dir, 'iter_2.pth'))['meta']['iter'] == 2


# --- non-finite losses --------------------------------------------------------------------------------------------

def test_non_finite_loss_stops_before_the_step_naming_iteration_and_term(toy_data_root, toy_teacher_ckpt,
                                                                         tmp_path, monkeypatch):
    forward, calls = GDKDLoss.forward, []

    def nan_on_second_call(self, *args):
        calls.append(1)
        loss = forward(self, *args)
        return loss * float('nan') if len(calls) == 2 else loss

    monkeypatch.setattr(GDKDLoss, 'forward', nan_on_second_call)
    # one GDKD call per iteration (no auxiliary distillation), so the second call is iteration 2's
    runner = toy_runner(toy_data_root, toy_teacher_ckpt, str(tmp_path), max_iters=3,
                        **{'model.aux_distill_weight': 0.0})
    with pytest.raises(NonFiniteLossError, match=r'iteration 2: distill\.loss_gdkd=nan\b'):
        runner.train()
    # no optimizer step with the NaN: the weights are those saved after iteration 1
    saved = load_checkpoint_file(str(tmp_path / 'iter_1.pth'))['state_dict']
    for name, param in runner.model.student.named_parameters():
        assert torch.equal(param.detach(), saved[f'student.{name}']), name
    assert not osp.exists(tmp_path / 'iter_2.pth')


@pytest.mark.parametrize('enabled', [True, False])
def test_nan_teacher_is_caught_unless_the_check_is_off(toy_data_root, toy_teacher_ckpt, tmp_path, enabled):
    runner = toy_runner(toy_data_root, toy_teacher_ckpt, str(tmp_path / 'run'), max_iters=1,
                        **{'default_hooks.non_finite_loss.enabled': enabled})
    # a teacher turning NaN in memory (a NaN checkpoint is refused when loaded)
    runner.model.teacher.decode_head.conv_seg.weight.data.fill_(float('nan'))
    if enabled:
        with pytest.raises(NonFiniteLossError, match=r'iteration 1: distill\.loss_gdkd=nan\b.*teacher'):
            runner.train()
        assert all(torch.isfinite(param).all() for param in runner.model.student.parameters())
    else:  # what the check prevents: MMEngine steps on, and the student's weights turn NaN
        runner.train()
        assert not all(torch.isfinite(param).all() for param in runner.model.student.parameters())


# --- --cfg-options that would change nothing ------------------------------------------------------------------------

@pytest.mark.parametrize('option,instead', [
    ('teacher_ckpt=/my/teacher.pth', r'model\.teacher_ckpt'),  # not a variable of the shipped configs
    ('max_iters=5', r'train_cfg\.max_iters'),  # a variable of configs/demo/gdkd_toy.py
    ('norm_cfg.type=BN', r'model\.student\.backbone\.norm_cfg'),  # a variable of MMSeg's base configs
])
def test_cfg_options_that_would_be_ignored_are_refused(option, instead, monkeypatch):
    module = load_tool('train.py')
    monkeypatch.setattr(sys, 'argv', ['train.py', TOY_CONFIG, '--cfg-options', option])
    with pytest.raises(ValueError, match=rf"--cfg-options {re.escape(option.split('=')[0])}: nothing in the run "
                                         rf'reads a top-level .*override the setting itself, e\.g\. {instead}'):
        module.build_config(module.parse_args())


def test_cfg_options_model_teacher_ckpt_reaches_the_distiller(toy_data_root, monkeypatch):
    module = load_tool('train.py')
    monkeypatch.setattr(sys, 'argv', ['train.py', TOY_CONFIG, '--cfg-options', 'model.teacher_ckpt=/my/teacher.pth',
                                      'find_unused_parameters=True'] + cfg_options(
        tiny_data_options(toy_data_root))[1:])
    assert module.build_config(module.parse_args()).model.teacher_ckpt == '/my/teacher.pth'


def test_no_shipped_config_has_a_top_level_teacher_ckpt():
    """``teacher_ckpt`` is set in ``model`` only, the setting ``--cfg-options model.teacher_ckpt=`` overrides."""
    for path in glob.glob(config_path('**', '*.py'), recursive=True):
        with open(path) as file:
            assert not re.search(r'^teacher_ckpt\s*=', file.read(), re.M), path


# --- bad distillation configs -------------------------------------------------------------------------------------

def test_k_larger_than_the_class_count_fails_at_build_before_the_teacher():
    # the teacher checkpoint does not exist: the k check must come first
    cfg = distiller_config('/nonexistent/teacher.pth')
    cfg.distill_losses.loss_gdkd.k = 25
    with pytest.raises(ValueError, match=r'distill_losses\.loss_gdkd: k=25 is larger than the number of classes '
                                         r'C=19'):
        MODELS.build(cfg)
    cfg.distill_losses.loss_gdkd.k = 19  # every class in the top group is allowed
    with pytest.raises(FileNotFoundError, match='/nonexistent/teacher.pth'):
        MODELS.build(cfg)


def test_unknown_loss_option_lists_the_valid_ones():
    cfg = distiller_config('/nonexistent/teacher.pth')
    cfg.distill_losses.loss_gdkd.temprature = 2.0
    with pytest.raises(TypeError, match=r"distill_losses\.loss_gdkd: GDKDLoss has no option\(s\) 'temprature'; "
                                        r'valid options: k, w0, w1, w2, temperature, loss_weight'):
        MODELS.build(cfg)


def test_wrong_loss_option_type_names_the_entry_before_the_teacher():
    cfg = distiller_config('/nonexistent/teacher.pth')
    cfg.distill_losses.loss_gdkd.w2 = 'abc'
    with pytest.raises(ValueError, match=r"distill_losses\.loss_gdkd: w2 must be a finite number, got w2='abc'"):
        MODELS.build(cfg)


def test_unregistered_loss_type_is_named_with_the_registered_ones():
    cfg = distiller_config('/nonexistent/teacher.pth')
    cfg.distill_losses = dict(loss_x=dict(type='GDKDLos'))
    with pytest.raises(KeyError, match=r"distill_losses\.loss_x: loss type 'GDKDLos' is not registered; the "
                                       r'registered distillation losses are CWDLoss, DISTLoss, DKDLoss, GDKD3Loss, '
                                       r'GDKDLoss, KDLoss'):
        MODELS.build(cfg)


# --- pickled objects in checkpoints -------------------------------------------------------------------------------

class CreatesAFolder:
    """Stands for code a malicious checkpoint runs on unpickling."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.makedirs, (self.path,))


def test_pretrained_backbone_with_pickled_code_is_refused_unrun(tmp_path):
    """``init_cfg=dict(type='Pretrained')`` (MMSeg's ImageNet backbones) loads through torch's weights_only."""
    marker = str(tmp_path / 'code_ran')
    torch.save({'state_dict': {'conv1.weight': torch.zeros(1)}, 'payload': CreatesAFolder(marker)},
               str(tmp_path / 'backbone.pth'))
    cfg = distiller_config('/unused.pth')
    student = cfg.student
    student.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(tmp_path / 'backbone.pth'))
    model = MODELS.build(student)
    with pytest.raises(CheckpointLoadError, match='refused and nothing in it was run'):
        model.init_weights()
    assert not osp.exists(marker)


def test_resume_from_a_checkpoint_with_pickled_code_is_refused_unrun(toy_data_root, toy_teacher_ckpt, tmp_path):
    marker = str(tmp_path / 'code_ran')
    runner = toy_runner(toy_data_root, toy_teacher_ckpt, str(tmp_path / 'run'), max_iters=1)
    torch.save({'state_dict': {}, 'meta': {'iter': 1, 'epoch': 0}, 'payload': CreatesAFolder(marker)},
               str(tmp_path / 'evil.pth'))
    with pytest.raises(CheckpointLoadError, match="^load_from '.*evil.pth' cannot be loaded: .*refused and nothing in "
                                                  'it was run'):
        runner.load_checkpoint(str(tmp_path / 'evil.pth'))
    assert not osp.exists(marker)
