"""What ``tools/train.py`` refuses before it trains: a resume that cannot work (a weights-only file, a changed model
or optimizer), a ``load_from`` of another model (unless ``--allow-partial``), a loop of no iterations, a NaN or an
infinity in any setting, a ``last_checkpoint`` that is not a file, and a work dir another run holds."""
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import pytest
import torch
from mmengine.registry import DefaultScope

from gdkd_seg.checkpoint.loading import load_checkpoint_file
from gdkd_seg.checkpoint.matching import CheckpointMismatchError
from gdkd_seg.checkpoint.saving import LatestPointerError
from gdkd_seg.engine.hooks.checkpoint_match import optimizer_mismatches
from gdkd_seg.engine.work_dir_lock import LOCK_NAME, WorkDirInUseError, work_dir_lock
from gdkd_seg.utils.errors import ConfigError
from tests.support import (
    cfg_options,
    config_path,
    fails_within,
    fast_distill_options,
    load_tool,
)

TOY_CONFIG = config_path('demo', 'gdkd_toy.py')
pytestmark = pytest.mark.usefixtures('mmseg_scope')


@pytest.fixture(scope='module')
def options(toy_data_root, toy_teacher_ckpt) -> dict:
    return dict(fast_distill_options(toy_data_root, toy_teacher_ckpt), **{
        'train_cfg.max_iters': 1, 'default_hooks.checkpoint.interval': 1, 'val_cfg': None, 'val_dataloader': None,
        'val_evaluator': None})


def train(monkeypatch, *args: str, **options) -> None:
    """``tools/train.py TOY_CONFIG *args --cfg-options options`` in this process (its errors raise)."""
    monkeypatch.setattr(sys, 'argv', ['train.py', TOY_CONFIG, *args, *cfg_options(options)])
    load_tool('train.py').main()


@pytest.fixture(scope='module')
def finished_run(options, tmp_path_factory) -> str:
    """A work dir after one iteration of tools/train.py (iter_1.pth, last_checkpoint)."""
    work_dir = str(tmp_path_factory.mktemp('finished') / 'run')
    # the Runner makes its scope the process's default: kept to the fixture, as mmseg_scope keeps it to a test
    with pytest.MonkeyPatch.context() as monkeypatch, DefaultScope.overwrite_default_scope('mmseg'):
        train(monkeypatch, '--work-dir', work_dir, **options)
    return work_dir


def copy_run(work_dir: str, destination: str, latest: str = 'iter_1.pth') -> str:
    """A copy of ``work_dir`` whose ``last_checkpoint`` names ``latest`` in the copy."""
    shutil.copytree(work_dir, destination)
    with open(osp.join(destination, 'last_checkpoint'), 'w') as file:
        file.write(osp.join(destination, latest))
    return destination


# --- resume --------------------------------------------------------------------------------------------------------

def test_resume_of_a_weights_only_file_says_there_is_no_training_state(finished_run, options, tmp_path, monkeypatch):
    work_dir = copy_run(finished_run, str(tmp_path / 'run'), latest='weights.pth')
    checkpoint = load_checkpoint_file(osp.join(finished_run, 'iter_1.pth'))
    torch.save({'state_dict': checkpoint['state_dict'], 'meta': {'dataset_meta': {}}},
               osp.join(work_dir, 'weights.pth'))  # what the export writes
    with pytest.raises(CheckpointMismatchError, match=rf"^--resume: '{work_dir}/weights\.pth' holds weights but no "
                                                      r'training state \(no message_hub; it holds meta, state_dict\): '
                                                      r'an exported or downloaded weights file.*load_from=PATH, '
                                                      r'without --resume$'):
        train(monkeypatch, '--work-dir', work_dir, '--resume', **dict(options, **{'train_cfg.max_iters': 2}))
    assert not osp.exists(osp.join(work_dir, 'iter_2.pth'))


@pytest.mark.parametrize('change, expected', [
    ({'model.student.decode_head.channels': 32}, r'mis-shaped keys: student\.decode_head\.aspp_modules\.0\.bn\.bias '
                                                 r'\(16,\) != \(32,\).*; mis-shaped optimizer state: parameter \d+: '
                                                 r'exp_avg \(19, 16, 1, 1\) != \(19, 32, 1, 1\)'),
    ({'optim_wrapper.optimizer.type': 'Adamax'}, r"optimizer settings \['amsgrad', .*\] in the checkpoint, \[\] in "
                                                 r'this run \(another optimizer type\)'),
])
def test_resume_after_changing_the_model_or_optimizer_is_refused(change, expected, finished_run, options, tmp_path,
                                                                  monkeypatch, capsys):
    work_dir = copy_run(finished_run, str(tmp_path / 'run'))
    with pytest.raises(CheckpointMismatchError, match=rf"^--resume: '{work_dir}/iter_1\.pth' is not a checkpoint of "
                                                      rf'this model and optimizer; {expected}.*resume with the config '
                                                      r'and --cfg-options the run was started with'):
        train(monkeypatch, '--work-dir', work_dir, '--resume',
              **dict(options, **{'train_cfg.max_iters': 2}, **change))
    assert 'resumed epoch' not in capsys.readouterr().out
    assert not osp.exists(osp.join(work_dir, 'iter_2.pth'))


def test_an_unchanged_resume_still_continues(finished_run, options, tmp_path, monkeypatch, capsys):
    work_dir = copy_run(finished_run, str(tmp_path / 'run'))
    train(monkeypatch, '--work-dir', work_dir, '--resume', **dict(options, **{'train_cfg.max_iters': 2}))
    assert 'resumed epoch: 0, iter: 1' in capsys.readouterr().out
    assert load_checkpoint_file(osp.join(work_dir, 'iter_2.pth'))['meta']['iter'] == 2


def test_optimizer_state_of_other_parameters_is_named():
    saved_model, model = torch.nn.Linear(2, 3), torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Linear(4, 1))
    saved = torch.optim.SGD(saved_model.parameters(), lr=0.1, momentum=0.9)
    saved_model(torch.ones(1, 2)).sum().backward()
    saved.step()
    wrapper = type('Wrapper', (), {'optimizer': torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)})
    assert optimizer_mismatches(saved.state_dict(), wrapper) == [
        'optimizer parameters per group: [2] in the checkpoint, [4] in this run (trainable parameters or parameter '
        'groups changed)']
    wrapper.optimizer = torch.optim.SGD(torch.nn.Linear(2, 5).parameters(), lr=0.1, momentum=0.9)
    assert optimizer_mismatches(saved.state_dict(), wrapper) == [
        'mis-shaped optimizer state: parameter 0: momentum_buffer (3, 2) != (5, 2), parameter 1: momentum_buffer (3,) '
        '!= (5,)']
    wrapper.optimizer = torch.optim.SGD(torch.nn.Linear(2, 3).parameters(), lr=0.5, momentum=0.5)
    assert optimizer_mismatches(saved.state_dict(), wrapper) == []


def test_last_checkpoint_that_is_not_a_file_is_named(finished_run, options, tmp_path, monkeypatch):
    work_dir = copy_run(finished_run, str(tmp_path / 'run'))
    os.remove(osp.join(work_dir, 'last_checkpoint'))
    os.mkfifo(osp.join(work_dir, 'last_checkpoint'))
    with fails_within(60), pytest.raises(LatestPointerError, match=rf'^{work_dir}/last_checkpoint is a named pipe, '
                                                                   'not the file naming the latest checkpoint'):
        train(monkeypatch, '--work-dir', work_dir, '--resume', **dict(options, **{'train_cfg.max_iters': 2}))


# --- load_from -----------------------------------------------------------------------------------------------------

def test_load_from_another_model_is_refused_unless_allowed(options, toy_teacher_ckpt, tmp_path, monkeypatch, capsys):
    with pytest.raises(CheckpointMismatchError, match=rf"^checkpoint '{toy_teacher_ckpt}' does not match the model "
                                                      r'of the config; missing keys: student\..*unexpected keys: '
                                                      r"auxiliary_head.*A distiller's checkpoint holds its student's "
                                                      r'weights, named student\.\*:.*init_cfg.*Pass --allow-partial to '
                                                      r'start from the weights that match\.$'):
        train(monkeypatch, '--work-dir', str(tmp_path / 'refused'), **dict(options, load_from=toy_teacher_ckpt))
    assert not osp.exists(tmp_path / 'refused' / 'iter_1.pth')
    train(monkeypatch, '--work-dir', str(tmp_path / 'allowed'), '--allow-partial',
          **dict(options, load_from=toy_teacher_ckpt))
    assert 'does not match the model of the config (allowed: partial weights)' in capsys.readouterr().out
    assert osp.isfile(tmp_path / 'allowed' / 'iter_1.pth')


# --- settings ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('option, value', [('model.aux_distill_weight', 'nan'), ('model.aux_distill_weight', 'inf'),
                                           ('model.distill_losses.loss_gdkd.w2', '-inf'),
                                           ('optim_wrapper.optimizer.lr', 'nan'),
                                           ('param_scheduler.0.power', 'inf')])
def test_non_finite_settings_are_refused_before_the_build(option, value, monkeypatch):
    module = load_tool('train.py')
    monkeypatch.setattr(sys, 'argv', ['train.py', TOY_CONFIG, '--cfg-options', f'{option}={value}'])
    with pytest.raises(ConfigError, match=rf'^{re.escape(option)}={value}: settings must be finite numbers'):
        module.build_config(module.parse_args())


@pytest.mark.parametrize('option', ['train_cfg.max_iters=0', 'train_cfg.max_iters=-5', 'train_cfg.max_iters=2.5'])
def test_a_loop_of_no_iterations_is_refused(option, monkeypatch):
    module = load_tool('train.py')
    monkeypatch.setattr(sys, 'argv', ['train.py', TOY_CONFIG, '--cfg-options', option])
    with pytest.raises(ConfigError, match=r'^train_cfg\.max_iters=.*: training needs a whole number >= 1 of iters'):
        module.build_config(module.parse_args())


# --- one run per work dir ------------------------------------------------------------------------------------------

# Another run holding a work dir: a process holding the POSIX lock of its lock file (by fcntl alone, so that it starts
# in a blink) and saying who it is there, as work_dir_lock does
HOLDER = ('import fcntl, os, sys\n'
          'file = open(os.path.join(sys.argv[1], sys.argv[2]), "a+")\n'
          'fcntl.lockf(file, fcntl.LOCK_EX | fcntl.LOCK_NB)\n'
          'file.write(f"host there, process {os.getpid()}, started then\\n"); file.flush()\n'
          'print("locked", flush=True); sys.stdin.read()')


@pytest.fixture
def holder(tmp_path):
    """Start a process holding the lock of ``tmp_path / 'run'``; yields the process (killed at the end)."""
    os.makedirs(tmp_path / 'run')
    process = subprocess.Popen([sys.executable, '-c', HOLDER, str(tmp_path / 'run'), LOCK_NAME],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == 'locked'
    yield process
    process.kill()
    process.wait()


def test_a_second_run_in_a_held_work_dir_is_refused(holder, options, tmp_path, monkeypatch):
    work_dir = str(tmp_path / 'run')
    with pytest.raises(WorkDirInUseError, match=rf"^the work dir '{work_dir}' is in use by another training run \(host "
                                                rf'there, process {holder.pid}, started then; lock .*\); .* Wait for '
                                                'it to finish, or pass another --work-dir$'):
        train(monkeypatch, '--work-dir', work_dir, **options)
    assert sorted(os.listdir(work_dir)) == [LOCK_NAME]  # nothing of the second run was written


def test_a_killed_run_leaves_no_lock_behind(holder, tmp_path):
    with pytest.raises(WorkDirInUseError, match=f'process {holder.pid}, started then'):
        with work_dir_lock(str(tmp_path / 'run')):
            pass
    holder.kill()  # SIGKILL: no clean-up of its own
    holder.wait()
    with work_dir_lock(str(tmp_path / 'run')):
        with open(tmp_path / 'run' / LOCK_NAME) as file:
            assert f'process {os.getpid()}, started' in file.read()
    with work_dir_lock(str(tmp_path / 'run')):  # released at the end of the block
        pass
