"""Crash-safe checkpoint saving: a crash, a kill or a full disk while saving never leaves a truncated checkpoint as
the latest one or loses the previous checkpoint (files are written by :func:`gdkd_seg.utils.files.atomic_write`,
whose leftovers :func:`gdkd_seg.utils.files.remove_stale_temporaries` cleans up when the next run starts); and the
work dir's ``last_checkpoint``, which names the latest checkpoint, is written and read as the path's own bytes
(:func:`find_latest_checkpoint`).

:func:`gdkd_seg.engine.patches.apply` installs :func:`atomic_save_checkpoint`, :func:`save_checkpoint_with_step` and
:func:`find_latest_checkpoint` in MMEngine.
"""
import functools
import os
import os.path as osp
from typing import Callable, Optional

import torch
from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, get_file_backend

from ..utils.errors import UserError
from ..utils.files import atomic_write, not_a_regular_file

# the file in the work dir that names the latest checkpoint (MMEngine's name)
LATEST_POINTER = 'last_checkpoint'


class LatestPointerError(UserError, OSError):
    """A work dir's ``last_checkpoint`` that is not a file."""


def find_latest_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``<work_dir>/last_checkpoint`` names, or None without one (MMEngine's function, reading the
    path as the bytes :func:`save_checkpoint_with_step` wrote, so a path that is not UTF-8 reads back as it was).

    Raises:
        LatestPointerError: ``last_checkpoint`` is a directory, a named pipe (reading it would wait forever) or
            another non-file.
    """
    pointer = osp.join(work_dir, LATEST_POINTER)
    if not osp.exists(pointer):
        return None
    kind = not_a_regular_file(pointer)
    if kind:
        raise LatestPointerError(f'{pointer} is {kind}, not the file naming the latest checkpoint that the run '
                                 'writes; remove it, or pass another --work-dir')
    with open(pointer, 'rb') as file:
        return os.fsdecode(file.read().strip()) or None


def atomic_save_checkpoint(save_checkpoint: Callable) -> Callable:
    """MMEngine's ``save_checkpoint`` writing local files through :func:`atomic_write` (other backends, such as
    pavi or s3, are left to ``save_checkpoint``)."""
    @functools.wraps(save_checkpoint)
    def wrapper(checkpoint: dict, filename: str, file_client_args: Optional[dict] = None,
                backend_args: Optional[dict] = None) -> None:
        if file_client_args is not None or str(filename).startswith('pavi://') or not isinstance(
                get_file_backend(filename, backend_args=backend_args), LocalBackend):
            return save_checkpoint(checkpoint, filename, file_client_args=file_client_args, backend_args=backend_args)
        atomic_write(str(filename), lambda file: torch.save(checkpoint, file))
    return wrapper


def save_checkpoint_with_step(self, runner, step: int, meta: dict) -> None:
    """MMEngine 0.10.7's ``CheckpointHook._save_checkpoint_with_step``, reordered so a failed save loses nothing.

    MMEngine deletes the checkpoint that falls out of ``max_keep_ckpts`` *before* saving the new one, so a crash
    during the save (full disk, kill, preemption) with ``max_keep_ckpts=1`` leaves no checkpoint at all while
    ``last_checkpoint`` names the deleted file. Here the new checkpoint is saved (atomically) first, then
    ``last_checkpoint`` is replaced atomically, and only then is the outdated checkpoint deleted.
    """
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
    # the path's own bytes (os.fsencode), so a folder name that is not UTF-8 survives the round trip
    atomic_write(osp.join(runner.work_dir, LATEST_POINTER), lambda file: file.write(os.fsencode(str(self.last_ckpt))))
    for old_step in outdated:
        path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old_step))
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # checkpoints saved by deepspeed are directories
            self.file_backend.rmtree(path)
