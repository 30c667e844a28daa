"""Loading checkpoints: no code in a file runs whatever loads it, MMEngine's own checkpoints (message hub, numpy,
registered statistics) still load, a checkpoint of another model is refused by test and export, and a bad file (text,
empty, truncated, a directory, a named pipe, a zip bomb, non-finite weights) is named with its setting and what is
wrong with it, the last four before torch.load sees it."""
import copyreg
import os
import os.path as osp
import pickle
import re
import shutil
import sys
import zipfile

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.registry import DefaultScope
from mmengine.runner import CheckpointLoader

from gdkd_seg.checkpoint.export import export_student
from gdkd_seg.checkpoint.loading import CheckpointLoadError, load_checkpoint_file
from gdkd_seg.models import load_teacher_weights
from tests.support import (
    assert_user_error,
    cfg_options,
    config_path,
    fast_distill_options,
    load_tool,
    run_tool,
    serving,
    tiny_data_options,
    toy_runner,
)

TOY_CONFIG = config_path('demo', 'gdkd_toy.py')
REFUSED = 'refused and nothing in it was run'
pytestmark = pytest.mark.usefixtures('mmseg_scope')


# --- crafted pickles -----------------------------------------------------------------------------------------------

class Call:
    """Pickles as ``func(*args)`` (REDUCE), then ``BUILD state`` when given."""

    def __init__(self, func, *args, state=None) -> None:
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


class StateOf:
    """Pickles as an instance of ``cls`` rebuilt from ``state`` (NEWOBJ, BUILD), as MMEngine's HistoryBuffer is."""

    def __init__(self, cls, state: dict) -> None:
        self.cls, self.state = cls, state

    @property
    def __class__(self):  # pickle checks that NEWOBJ's class is the object's
        return self.cls

    def __reduce_ex__(self, protocol):
        return (copyreg.__newobj__, (self.cls,), self.state)


def buffer_state(**extra) -> dict:
    return dict({'max_length': 10, '_log_history': np.zeros(1), '_count_history': np.ones(1)}, **extra)


def code_running_buffer(marker: str) -> StateOf:
    """A HistoryBuffer that ``copy.deepcopy`` (MessageHub.load_state_dict on resume) turns into
    ``eval("open(marker, 'w')")``: ``getattr(getattr, '__self__')`` is the builtins module, ``eval`` its attribute,
    and a planted ``__reduce_ex__`` (a tuple's ``__getitem__``) hands deepcopy ``(eval, (code,))``."""
    builtins_eval = Call(getattr, Call(getattr, getattr, '__self__'), 'eval')
    reduction = Call(getattr, (0, 0, 0, 0, (builtins_eval, (f"open({marker!r}, 'w').close()",))), '__getitem__')
    return StateOf(HistoryBuffer, buffer_state(__reduce_ex__=reduction))


def object_field_dtype_scalar():
    """A numpy scalar whose dtype ``__setstate__`` gives an object field over 8 raw bytes: a pointer the file picks."""
    object_dtype = Call(np.dtype, 'O', False, True)
    dtype = Call(np.dtype, 'f8', False, True, state=(3, '|', None, ('a',), {'a': (object_dtype, 0)}, 8, 1, 0))
    return Call(np._core.multiarray.scalar, dtype, b'A' * 8)


CRAFTED = {
    'getattr reaches eval': lambda marker: Call(getattr, Call(getattr, getattr, '__self__'), 'eval'),
    'getattr on numpy': lambda marker: Call(getattr, np.ndarray, 'tofile'),
    'getattr on HistoryBuffer, not a statistic': lambda marker: Call(getattr, HistoryBuffer, 'update'),
    'HistoryBuffer with a planted __reduce_ex__': lambda marker: StateOf(HistoryBuffer, buffer_state(__reduce_ex__=1)),
    'numpy dtype with an object field': lambda marker: object_field_dtype_scalar(),
}


def evil_training_checkpoint(genuine: str, path: str, marker: str) -> str:
    """``genuine`` (an MMEngine training checkpoint) with :func:`code_running_buffer` in its message hub."""
    checkpoint = load_checkpoint_file(genuine)
    checkpoint['message_hub']['runtime_info']['evil'] = code_running_buffer(marker)
    torch.save(checkpoint, path)
    return path


@pytest.fixture(scope='module')
def training_run(toy_data_root, toy_teacher_ckpt, tmp_path_factory) -> str:
    """The demo distillation trained for 2 iterations by MMEngine's Runner, keeping iter_1.pth and iter_2.pth."""
    work_dir = str(tmp_path_factory.mktemp('safety') / 'run')
    with DefaultScope.overwrite_default_scope('mmseg'):
        toy_runner(toy_data_root, toy_teacher_ckpt, work_dir, max_iters=2, val_cfg=None, val_dataloader=None,
                   val_evaluator=None, **{'default_hooks.checkpoint.max_keep_ckpts': 2}).train()
    return work_dir


@pytest.fixture
def evil_checkpoint(training_run, tmp_path):
    marker = str(tmp_path / 'code_ran')
    return evil_training_checkpoint(osp.join(training_run, 'iter_2.pth'), str(tmp_path / 'evil.pth'), marker), marker


# --- nothing in a file runs ----------------------------------------------------------------------------------------

@pytest.mark.parametrize('crafted', CRAFTED)
def test_crafted_globals_are_refused_by_every_load(crafted, tmp_path):
    path = str(tmp_path / 'crafted.pth')
    torch.save({'state_dict': {}, 'payload': CRAFTED[crafted](str(tmp_path / 'code_ran'))}, path)
    with pytest.raises(CheckpointLoadError, match=REFUSED):
        load_checkpoint_file(path)
    with pytest.raises(pickle.UnpicklingError):  # a plain torch.load in a process that imported gdkd_seg
        torch.load(path, weights_only=True)


def test_resume_refuses_the_code_running_checkpoint_even_when_torch_is_told_not_to_check(
        evil_checkpoint, training_run, toy_data_root, toy_teacher_ckpt, tmp_path):
    evil, marker = evil_checkpoint
    work_dir = shutil.copytree(training_run, str(tmp_path / 'run'))
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as file:
        file.write(evil)
    options = cfg_options(fast_distill_options(toy_data_root, toy_teacher_ckpt, **{'train_cfg.max_iters': 3}))
    result = run_tool('train.py', TOY_CONFIG, '--work-dir', work_dir, '--resume', *options, check=False,
                      env=dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD='1'))
    assert_user_error(result, f"--resume: the latest checkpoint (named in {work_dir}/last_checkpoint) '{evil}' cannot "
                              'be loaded', REFUSED)
    assert not osp.exists(marker)


def test_test_tool_refuses_the_code_running_checkpoint(evil_checkpoint, toy_data_root):
    evil, marker = evil_checkpoint
    result = run_tool('test.py', TOY_CONFIG, evil, *cfg_options(tiny_data_options(toy_data_root)), check=False)
    assert_user_error(result, f"the CHECKPOINT argument (load_from) '{evil}' cannot be loaded", REFUSED)
    assert not osp.exists(marker)


def test_load_from_export_and_teacher_refuse_the_code_running_checkpoint(evil_checkpoint, toy_data_root,
                                                                         toy_teacher_ckpt, tmp_path):
    evil, marker = evil_checkpoint
    runner = toy_runner(toy_data_root, toy_teacher_ckpt, str(tmp_path / 'run'), max_iters=1, load_from=evil)
    with pytest.raises(CheckpointLoadError, match=f"^load_from '{evil}' cannot be loaded: .*{REFUSED}"):
        runner.load_or_resume()
    with pytest.raises(CheckpointLoadError, match=f"^the CHECKPOINT argument '{evil}' cannot be loaded: .*{REFUSED}"):
        export_student(TOY_CONFIG, evil, str(tmp_path / 'export'))
    with pytest.raises(CheckpointLoadError, match=f"^model.teacher_ckpt '{evil}' cannot be loaded: .*{REFUSED}"):
        load_teacher_weights(torch.nn.Linear(1, 1), evil)
    assert not osp.exists(marker) and not osp.exists(tmp_path / 'export')


def test_a_teacher_downloaded_from_a_url_is_checked_too(local_only_downloads, tmp_path):
    """MMEngine downloads through torch.hub, which loads with weights_only=False: the file's code would run."""
    marker = str(tmp_path / 'code_ran')
    os.makedirs(tmp_path / 'served')
    torch.save({'state_dict': {}, 'payload': Call(open, marker, 'w')}, str(tmp_path / 'served' / 'teacher.pth'))
    with serving(str(tmp_path / 'served')) as address:
        url = f'{address}/teacher.pth'
        with pytest.raises(CheckpointLoadError, match=f"^model.teacher_ckpt '{url}' \\(downloaded to .*\\) cannot be "
                                                      f'loaded: .*{REFUSED}'):
            load_teacher_weights(torch.nn.Linear(1, 1), url)
    assert not osp.exists(marker)


# --- MMEngine's own checkpoints still load -------------------------------------------------------------------------

def doubled_mean(self, window_size=None):
    """A statistic a run registers itself."""
    return 2 * self.mean(window_size)


def test_a_registered_statistic_loads_by_name(tmp_path, monkeypatch):
    # HistoryBuffer.register_statistics(doubled_mean), undone after the test (the table is class-wide)
    monkeypatch.setitem(HistoryBuffer._statistics_methods, 'doubled_mean', doubled_mean)
    hub = MessageHub.get_instance('statistics_test')
    hub.update_scalar('train/loss', 0.5)
    hub.update_scalar('train/loss', 1.5)
    torch.save({'message_hub': hub.state_dict()}, str(tmp_path / 'ckpt.pth'))

    resumed = MessageHub.get_instance('statistics_test_resumed')
    resumed.load_state_dict(load_checkpoint_file(str(tmp_path / 'ckpt.pth'))['message_hub'])
    assert type(resumed.get_scalar('train/loss')) is HistoryBuffer
    assert resumed.get_scalar('train/loss').statistics('doubled_mean') == 2.0

    # a process that has not registered it: named, with what to do
    monkeypatch.delitem(HistoryBuffer._statistics_methods, 'doubled_mean')
    with pytest.raises(CheckpointLoadError, match=r'names tests\.checkpoint\.test_checkpoint_safety\.doubled_mean, '
                                                  r'which is not allowed; if that is a HistoryBuffer statistic .* '
                                                  r'import the module that registers it'):
        load_checkpoint_file(str(tmp_path / 'ckpt.pth'))


def rename_in_pickle(path: str, old: bytes, new: bytes) -> None:
    """Rewrite the names a torch checkpoint's pickle refers to (as another library version wrote them)."""
    with zipfile.ZipFile(path) as archive:
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as archive:
        for info, data in entries:
            archive.writestr(info, data.replace(old, new) if info.filename.endswith('data.pkl') else data)


def test_numpy_data_pickled_by_numpy_1_loads_as_numpy(tmp_path):
    path = str(tmp_path / 'numpy1.pth')
    buffer = HistoryBuffer([1.0, 3.0], [1, 1])
    torch.save({'meta': {'seed': np.int64(7), 'lr': np.float32(0.5)}, 'buffer': buffer, 'mask': np.eye(2) > 0},
               path)
    rename_in_pickle(path, b'numpy._core.multiarray', b'numpy.core.multiarray')
    loaded = load_checkpoint_file(path)
    assert loaded['meta']['seed'] == 7 and type(loaded['meta']['seed']) is np.int64
    assert loaded['meta']['lr'] == np.float32(0.5) and type(loaded['mask']) is np.ndarray
    assert loaded['mask'].tolist() == [[True, False], [False, True]]
    assert type(loaded['buffer']) is HistoryBuffer and loaded['buffer'].mean() == 2.0


# --- a checkpoint of another model ---------------------------------------------------------------------------------

def test_test_tool_refuses_another_models_checkpoint_unless_allowed(toy_data_root, toy_teacher_ckpt, tmp_path,
                                                                    monkeypatch, capsys):
    test_tool = load_tool('test.py')

    def run_test(*flags):
        options = dict(tiny_data_options(toy_data_root), experiment_name=f'mismatch{len(flags)}')
        monkeypatch.setattr(sys, 'argv', ['test.py', TOY_CONFIG, toy_teacher_ckpt, '--work-dir', str(tmp_path),
                                          *flags, *cfg_options(options)])
        test_tool.main()

    with pytest.raises(RuntimeError, match=rf"^checkpoint '{toy_teacher_ckpt}' does not match the model of the "
                                           r"config; missing keys: student\.auxiliary_head.*; unexpected keys: "
                                           r'auxiliary_head.*Pass --allow-partial to evaluate it anyway'):
        run_test()
    assert not re.search(r'Iter\(test\).*mIoU', capsys.readouterr().out)  # nothing was evaluated
    run_test('--allow-partial')
    output = capsys.readouterr().out
    assert 'does not match the model of the config (allowed: partial weights)' in output
    assert re.search(r'Iter\(test\).*mIoU', output)


def test_export_refuses_a_student_of_other_widths_unless_allowed(training_run, tmp_path):
    checkpoint = load_checkpoint_file(osp.join(training_run, 'iter_2.pth'))
    weights = checkpoint['state_dict']
    weights['student.decode_head.conv_seg.weight'] = torch.zeros(19, 4, 1, 1)
    del weights['student.decode_head.conv_seg.bias']
    torch.save(checkpoint, str(tmp_path / 'other.pth'))
    with pytest.raises(RuntimeError, match=r'does not match the student of .*gdkd_toy\.py; missing keys: '
                                           r'decode_head\.conv_seg\.bias; mis-shaped keys: decode_head\.conv_seg\.'
                                           r'weight \(19, 4, 1, 1\) != \(19, 16, 1, 1\).*--allow-partial'):
        export_student(TOY_CONFIG, str(tmp_path / 'other.pth'), str(tmp_path / 'refused'))
    assert not osp.exists(tmp_path / 'refused')
    _, exported = export_student(TOY_CONFIG, str(tmp_path / 'other.pth'), str(tmp_path / 'allowed'),
                                 allow_partial=True)
    assert torch.load(exported)['state_dict']['decode_head.conv_seg.weight'].shape == (19, 4, 1, 1)


# --- bad files named -----------------------------------------------------------------------------------------------

def write_bad_file(kind: str, path: str, genuine: str) -> str:
    """A file of ``kind`` at ``path``; ``genuine`` is a real training checkpoint."""
    if kind == 'text':
        with open(path, 'w') as file:
            file.write('https://example.com/teacher.pth\n')
    elif kind == 'empty':
        open(path, 'wb').close()
    elif kind == 'truncated':  # the first half of a real checkpoint
        with open(genuine, 'rb') as source, open(path, 'wb') as file:
            file.write(source.read(os.path.getsize(genuine) // 2))
    elif kind == 'directory':
        os.mkdir(path)
    elif kind == 'named pipe':  # opening it would wait for a writer forever
        os.mkfifo(path)
    elif kind == 'zip bomb':  # the real checkpoint's records deflated: they inflate beyond the file's size
        with zipfile.ZipFile(genuine) as source, zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as bomb:
            for record in source.infolist():
                bomb.writestr(record.filename, source.read(record.filename))
            bomb.writestr(f'{source.namelist()[0].split("/")[0]}/padding', bytes(1 << 24))
    else:  # non-finite: the real checkpoint with one NaN and one infinite weight
        checkpoint = load_checkpoint_file(genuine)
        weights = checkpoint['state_dict']
        weights['student.decode_head.conv_seg.bias'][0] = float('nan')
        weights['student.decode_head.conv_seg.weight'][0] = float('-inf')
        torch.save(checkpoint, path)
    return path


BAD_FILES = {'text': r"it is not a PyTorch checkpoint \(it starts with b'http': a text file\?\)",
             'empty': r'the file is empty \(0 bytes\)',
             'truncated': r'the file is truncated: a zip archive of \d+ bytes whose end is missing',
             'directory': r'it is a directory, not a regular file',
             'named pipe': r'it is a named pipe, not a regular file',
             'zip bomb': r'its zip records would inflate to \d+ bytes from a file of \d+ bytes \(\d+ compressed '
                         r'record\(s\)\); torch\.save stores its records uncompressed, so it did not write this '
                         r'file, and nothing was inflated',
             'non-finite': r'weights that are NaN or infinite, in student\.decode_head\.conv_seg\.bias, '
                           r'student\.decode_head\.conv_seg\.weight\. These are the weights of a run that diverged'}


@pytest.fixture
def torch_load_never_called(monkeypatch):
    """Fail if a file reaches ``torch.load`` (a named pipe would block it, a zip bomb would be inflated)."""
    def refuse(*args, **kwargs):
        raise AssertionError('torch.load was called')
    monkeypatch.setattr(torch, 'load', refuse)


@pytest.mark.parametrize('kind', BAD_FILES)
def test_bad_teacher_and_load_from_files_are_named(kind, training_run, toy_data_root, toy_teacher_ckpt, tmp_path):
    bad = write_bad_file(kind, str(tmp_path / 'bad.pth'), osp.join(training_run, 'iter_1.pth'))
    with pytest.raises(CheckpointLoadError, match=f"^model.teacher_ckpt '{bad}' cannot be loaded: {BAD_FILES[kind]}"):
        load_teacher_weights(torch.nn.Linear(1, 1), bad)
    runner = toy_runner(toy_data_root, toy_teacher_ckpt, str(tmp_path / 'run'), max_iters=1, load_from=bad)
    with pytest.raises(CheckpointLoadError, match=f"^load_from '{bad}' cannot be loaded: {BAD_FILES[kind]}"):
        runner.load_or_resume()


@pytest.mark.parametrize('kind', ['directory', 'named pipe', 'zip bomb'])
def test_files_that_are_not_checkpoints_never_reach_torch_load(kind, training_run, tmp_path, torch_load_never_called):
    bad = write_bad_file(kind, str(tmp_path / 'bad.pth'), osp.join(training_run, 'iter_1.pth'))
    for setting, load in (('the CHECKPOINT argument', lambda: export_student(TOY_CONFIG, bad, str(tmp_path / 'out'))),
                          ('checkpoint', lambda: load_checkpoint_file(bad)),
                          ('checkpoint', lambda: CheckpointLoader.load_checkpoint(bad))):
        with pytest.raises(CheckpointLoadError, match=f"^{setting} '{bad}' cannot be loaded: {BAD_FILES[kind]}"):
            load()
    if kind == 'zip bomb':  # MMEngine hands streams of remote files (s3, pavi) to torch.load
        with open(bad, 'rb') as stream:
            with pytest.raises(CheckpointLoadError, match=rf'^checkpoint \(a stream\) cannot be loaded: '
                                                          rf'{BAD_FILES[kind]}'):
                load_checkpoint_file(stream)
            assert stream.tell() == 0


@pytest.mark.parametrize('kind', ['directory', 'non-finite'])
def test_test_tool_and_export_name_a_checkpoint_that_is_a_directory_or_diverged(kind, training_run, toy_data_root,
                                                                                tmp_path, monkeypatch, capsys):
    bad = write_bad_file(kind, str(tmp_path / 'bad.pth'), osp.join(training_run, 'iter_1.pth'))
    monkeypatch.setattr(sys, 'argv', ['test.py', TOY_CONFIG, bad, '--work-dir', str(tmp_path / 'test'),
                                      *cfg_options(tiny_data_options(toy_data_root))])
    with pytest.raises(CheckpointLoadError, match=f"^the CHECKPOINT argument \\(load_from\\) '{bad}' cannot be "
                                                  f'loaded: {BAD_FILES[kind]}'):
        load_tool('test.py').main()
    assert not re.search(r'Iter\(test\).*mIoU', capsys.readouterr().out)  # nothing was evaluated
    with pytest.raises(CheckpointLoadError, match=f"^the CHECKPOINT argument '{bad}' cannot be loaded: "
                                                  f'{BAD_FILES[kind]}'):
        export_student(TOY_CONFIG, bad, str(tmp_path / 'export'))
    assert not osp.exists(tmp_path / 'export')


def test_latest_checkpoint_that_is_a_named_pipe_names_the_previous_one(training_run, toy_data_root,
                                                                       toy_teacher_ckpt, tmp_path, monkeypatch):
    work_dir = shutil.copytree(training_run, str(tmp_path / 'run'))
    os.remove(osp.join(work_dir, 'iter_2.pth'))
    latest = write_bad_file('named pipe', osp.join(work_dir, 'iter_2.pth'), '')
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as file:
        file.write(latest)
    os.mkfifo(osp.join(work_dir, 'iter_3.pth'))  # newer, and not loadable either: skipped, not opened
    monkeypatch.setattr(sys, 'argv', ['tools/train.py', TOY_CONFIG, '--work-dir', work_dir, '--resume'])
    runner = toy_runner(toy_data_root, toy_teacher_ckpt, work_dir, max_iters=3, resume=True)
    with pytest.raises(CheckpointLoadError, match=f"'{latest}' cannot be loaded: it is a named pipe.*\nThe previous "
                                                  f"checkpoint {osp.join(work_dir, 'iter_1.pth')} loads"):
        runner.load_or_resume()


def test_truncated_latest_checkpoint_names_the_previous_one_to_resume_from(training_run, toy_data_root,
                                                                           toy_teacher_ckpt, tmp_path, monkeypatch):
    work_dir = shutil.copytree(training_run, str(tmp_path / 'run'))
    latest = write_bad_file('truncated', osp.join(work_dir, 'iter_2.pth'), osp.join(training_run, 'iter_2.pth'))
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as file:
        file.write(latest)
    argv = ['tools/train.py', TOY_CONFIG, '--work-dir', work_dir, '--resume']
    monkeypatch.setattr(sys, 'argv', argv)
    runner = toy_runner(toy_data_root, toy_teacher_ckpt, work_dir, max_iters=3, resume=True)
    previous = osp.join(work_dir, 'iter_1.pth')
    with pytest.raises(CheckpointLoadError) as error:
        runner.load_or_resume()
    assert str(error.value).splitlines() == [
        f"--resume: the latest checkpoint (named in {work_dir}/last_checkpoint) '{latest}' cannot be loaded: the "
        f'file is truncated: a zip archive of {os.path.getsize(latest)} bytes whose end is missing (an interrupted '
        'save, copy or download)',
        f'The previous checkpoint {previous} loads; resume from it with:',
        f'  python tools/train.py {TOY_CONFIG} --work-dir {work_dir} --resume --cfg-options load_from={previous}']
    # what that command does: MMEngine resumes from load_from when resume is set
    runner = toy_runner(toy_data_root, toy_teacher_ckpt, work_dir, max_iters=3, resume=True, load_from=previous)
    runner.load_or_resume()
    assert runner.iter == 1
