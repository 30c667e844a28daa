"""Crash-safe saving (gdkd_seg.checkpoint.saving, gdkd_seg.utils.files): a failed write leaves the old file, and the
temporary files of saves that died are removed while those of live saves are kept."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.runner.checkpoint import save_checkpoint

from gdkd_seg.utils.files import STALE_TEMPORARY_AGE_S, atomic_write, host_tag, remove_stale_temporaries, temporary_path


def dead_pid() -> int:
    """The id of a process that has exited."""
    process = subprocess.Popen([sys.executable, '-c', 'pass'])
    process.wait()
    return process.pid


def test_stale_temporaries_of_dead_saves_are_removed_live_ones_kept(tmp_path):
    host, dead = host_tag(), dead_pid()
    ours = temporary_path(str(tmp_path / 'iter_4.pth'))
    assert osp.basename(ours).startswith(f'.iter_4.pth.{host}.pid{os.getpid()}.') and ours.endswith('.tmp')
    stale = [f'.iter_2.pth.{host}.pid{dead}.0123abcd.tmp',  # this host, its process gone
             '.iter_2.pth.other-node.pid12.0123abcd.tmp',  # another host, not written for long
             f'.iter_2.pth.{dead}.0123abcd.tmp']  # a name without the host, old
    kept = [osp.basename(ours),  # a save of this (live) process
            '.iter_2.pth.other-node.pid12.4567abcd.tmp',  # another host, written recently: may be saving now
            f'.iter_2.pth.{dead}.4567abcd.tmp',  # a name without the host, recent
            'iter_2.pth', '.notes.tmp']  # not temporaries of atomic_write
    for name in stale + kept:
        (tmp_path / name).write_bytes(b'half a checkpoint')
    long_ago = os.path.getmtime(ours) - STALE_TEMPORARY_AGE_S - 60
    for name in stale[1:]:
        os.utime(tmp_path / name, (long_ago, long_ago))
    removed = remove_stale_temporaries([str(tmp_path), str(tmp_path / 'missing')])
    assert sorted(removed) == sorted(str(tmp_path / name) for name in stale)
    assert sorted(os.listdir(tmp_path)) == sorted(kept)


def test_failed_checkpoint_write_leaves_the_old_file(tmp_path, monkeypatch):
    """MMEngine's save_checkpoint (patched by gdkd_seg) writes beside the target and renames."""
    path = str(tmp_path / 'iter_2.pth')
    save_checkpoint({'state_dict': {'weight': torch.ones(3)}}, path)
    original = open(path, 'rb').read()

    def crash_mid_write(obj, file, *args, **kwargs):
        file.write(b'PK\x03\x04 partial checkpoint')
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(torch, 'save', crash_mid_write)
    with pytest.raises(OSError, match='No space left'):
        save_checkpoint({'state_dict': {'weight': torch.zeros(3)}}, path)
    assert open(path, 'rb').read() == original
    assert os.listdir(tmp_path) == ['iter_2.pth']
    with pytest.raises(RuntimeError, match='interrupted'):
        atomic_write(str(tmp_path / 'last_checkpoint'), lambda file: (_ for _ in ()).throw(RuntimeError('interrupted')))
    assert os.listdir(tmp_path) == ['iter_2.pth']
