"""Crash-safe checkpoint saving: a crash, a kill or a full disk while saving never leaves a truncated checkpoint as
the latest one or loses the previous checkpoint, and the temporary files of saves that died are cleaned up.

Covered by ``tests/test_reliability.py``.
"""
import logging
import os
import os.path as osp
import re
import socket
import time
import uuid
import warnings
from typing import Callable, Iterable, List, Optional

import torch
from mmengine.logging import print_log

# A temporary file left by a save whose writer is not known to be dead is removed only after this many seconds
# without a write (a save in progress writes continuously; an hour is far beyond any checkpoint's write time).
STALE_TEMPORARY_AGE_S = 3600


def host_tag() -> str:
    """This machine's host name as it appears in temporary file names (dots would make the names ambiguous)."""
    return re.sub(r'[^A-Za-z0-9_-]', '-', socket.gethostname()) or 'host'


def temporary_path(path: str) -> str:
    """A fresh temporary name beside ``path``: ``.<name>.<host>.pid<pid>.<random>.tmp``.

    Host and process id say whose save it is, so that :func:`remove_stale_temporaries` removes it when that process
    is gone, also in a work dir that several machines share.
    """
    folder, name = osp.split(osp.abspath(path))
    return osp.join(folder, f'.{name}.{host_tag()}.pid{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp')


# ``temporary_path``'s names, and those of earlier versions without the host: ``.<name>.<pid>.<random>.tmp``
_TEMPORARY_NAME = re.compile(r'^\.(?P<target>.+?)\.(?:(?P<host>[A-Za-z0-9_-]+)\.pid)?(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$')


def atomic_write(path: str, write: Callable) -> None:
    """Call ``write(file)`` on a new temporary file beside ``path``, flush it to disk, then rename it to ``path``.

    ``os.replace`` is atomic on POSIX and Windows: ``path`` is always either its previous content or the complete
    new one, never a truncated file, whatever happens during ``write`` (an exception, a full disk, a kill). The
    temporary file is removed when ``write`` fails; one left by a killed process is removed by
    :func:`remove_stale_temporaries` when the next run starts.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    temporary = temporary_path(path)
    try:
        with open(temporary, 'xb') as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.remove(temporary)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        directory = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError:
        pass


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True


def _why_stale(path: str, host: Optional[str], pid: int, now: float) -> Optional[str]:
    """Why the temporary file ``path`` of process ``pid`` on ``host`` (None: name without host) is stale, or None.

    On this host a file is stale once its process is gone. The process of a file from another host (a shared work
    dir) or from a name without the host cannot be checked from here: that file is stale only after
    ``STALE_TEMPORARY_AGE_S`` without a write.
    """
    if host == host_tag():
        return None if _process_alive(pid) else f'process {pid} on this host is no longer running'
    idle = now - os.path.getmtime(path)
    if idle < STALE_TEMPORARY_AGE_S:
        return None
    return f'process {pid} on {host or "an unknown host"}, not written for {idle / 3600:.1f} h'


def remove_stale_temporaries(folders: Iterable[str]) -> List[str]:
    """Remove the temporary files of :func:`atomic_write` that saves which died (killed, preempted, out of memory)
    left in ``folders``, each logged with the reason; those of saves that may still be running are kept.

    Args:
        folders: folders to clean (not recursively), e.g. the work dir; missing ones are skipped.

    Returns:
        The removed paths.
    """
    removed = []
    now = time.time()
    for folder in dict.fromkeys(osp.abspath(folder) for folder in folders):
        if not osp.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            match = _TEMPORARY_NAME.match(name)
            path = osp.join(folder, name)
            if match is None or not osp.isfile(path):
                continue
            try:
                reason = _why_stale(path, match['host'], int(match['pid']), now)
                if reason is None:
                    continue
                os.remove(path)
            except FileNotFoundError:  # finished or removed meanwhile
                continue
            removed.append(path)
            print_log(f'removed {path}: a half-written temporary file of {match["target"]!r} left by a save that '
                      f'died ({reason})', logger='current', level=logging.WARNING)
    return removed


# MMEngine's originals, kept while the crash-safe versions are installed
_ORIGINAL_SAVE_CHECKPOINT: Optional[Callable] = None
_ORIGINAL_SAVE_CHECKPOINT_WITH_STEP: Optional[Callable] = None


def _atomic_save_checkpoint(checkpoint: dict, filename: str, file_client_args: Optional[dict] = None,
                            backend_args: Optional[dict] = None) -> None:
    """``mmengine.runner.checkpoint.save_checkpoint`` that writes local files through :func:`atomic_write`."""
    from mmengine.fileio import LocalBackend, get_file_backend
    if file_client_args is not None or str(filename).startswith('pavi://') or not isinstance(
            get_file_backend(filename, backend_args=backend_args), LocalBackend):
        return _ORIGINAL_SAVE_CHECKPOINT(checkpoint, filename, file_client_args=file_client_args,
                                         backend_args=backend_args)
    atomic_write(str(filename), lambda file: torch.save(checkpoint, file))


def _save_checkpoint_with_step(self, runner, step: int, meta: dict) -> None:
    """MMEngine 0.10.7's ``CheckpointHook._save_checkpoint_with_step``, reordered so a failed save loses nothing.

    MMEngine deletes the checkpoint that falls out of ``max_keep_ckpts`` *before* saving the new one, so a crash
    during the save (full disk, kill, preemption) with ``max_keep_ckpts=1`` leaves no checkpoint at all while
    ``last_checkpoint`` names the deleted file. Here the new checkpoint is saved (atomically) first, then
    ``last_checkpoint`` is replaced atomically, and only then is the outdated checkpoint deleted.
    """
    from mmengine.dist import is_main_process
    outdated = []
    if self.max_keep_ckpts > 0 and not (len(self.keep_ckpt_ids) > 0 and self.keep_ckpt_ids[-1] == step):
        if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
            outdated.append(self.keep_ckpt_ids.popleft())
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

    ckpt_filename = self.filename_tmpl.format(step)
    self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
    runner.message_hub.update_info('last_ckpt', self.last_ckpt)
    runner.save_checkpoint(self.out_dir, ckpt_filename, self.file_client_args, save_optimizer=self.save_optimizer,
                           save_param_scheduler=self.save_param_scheduler, meta=meta, by_epoch=self.by_epoch,
                           backend_args=self.backend_args, **self.args)
    if not is_main_process():
        return
    atomic_write(osp.join(runner.work_dir, 'last_checkpoint'), lambda file: file.write(str(self.last_ckpt).encode()))
    for old_step in outdated:
        path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old_step))
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # checkpoints saved by deepspeed are directories
            self.file_backend.rmtree(path)


def make_checkpoint_saving_atomic() -> None:
    """A crash while saving a checkpoint never leaves a truncated file or loses the previous checkpoint.

    Replaces MMEngine's ``save_checkpoint`` (where the Runner and ``CheckpointHook`` look it up) by
    :func:`_atomic_save_checkpoint` and ``CheckpointHook._save_checkpoint_with_step`` by
    :func:`_save_checkpoint_with_step`. Idempotent; MMEngine versions other than 0.10.7 are left alone (warned).
    """
    global _ORIGINAL_SAVE_CHECKPOINT, _ORIGINAL_SAVE_CHECKPOINT_WITH_STEP
    import mmengine
    import mmengine.runner
    import mmengine.runner.checkpoint
    import mmengine.runner.runner
    from mmengine.hooks import CheckpointHook
    if _ORIGINAL_SAVE_CHECKPOINT is not None:
        return
    if mmengine.__version__ != '0.10.7':
        warnings.warn(f'gdkd_seg: crash-safe checkpoint saving is written for MMEngine 0.10.7, found '
                      f'{mmengine.__version__}; checkpoints are saved by MMEngine unchanged')
        return
    _ORIGINAL_SAVE_CHECKPOINT = mmengine.runner.checkpoint.save_checkpoint
    _ORIGINAL_SAVE_CHECKPOINT_WITH_STEP = CheckpointHook._save_checkpoint_with_step
    for module in (mmengine.runner.checkpoint, mmengine.runner.runner, mmengine.runner):
        module.save_checkpoint = _atomic_save_checkpoint
    CheckpointHook._save_checkpoint_with_step = _save_checkpoint_with_step
