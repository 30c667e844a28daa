"""One training run per work dir: :func:`work_dir_lock`.

Two runs started on one ``--work-dir`` would write the same ``iter_N.pth`` and ``last_checkpoint`` files, one run's
checkpoints silently replacing the other's. ``tools/train.py`` therefore holds an exclusive lock on
``<work_dir>/.train.lock`` for the whole run (the main process of a distributed run; the others share the folder by
design). It is a POSIX record lock (``fcntl.lockf``): the operating system releases it when the process ends,
however it ends (a crash, ``kill -9``, an out-of-memory kill), so a dead run never leaves the folder locked, and on
NFS it is held by the server, so a run on another node that shares the folder is refused too. The file itself stays
behind and says who held it last; only the lock counts.
"""
import fcntl
import logging
import os
import os.path as osp
import socket
import time
from contextlib import contextmanager
from typing import Iterator

from mmengine.logging import print_log

from ..utils.errors import UserError

LOCK_NAME = '.train.lock'


class WorkDirInUseError(UserError, RuntimeError):
    """Another training run holds the work dir."""


@contextmanager
def work_dir_lock(work_dir: str, enabled: bool = True) -> Iterator[None]:
    """Hold ``<work_dir>/.train.lock`` for the block, or raise when another run holds it.

    A file system that does not support locks (some network file systems mounted without them) gets a warning and
    no lock. The lock is per process: do not take it twice in one process (closing either file would release it).

    Args:
        work_dir: the run's work dir (created when missing).
        enabled: False holds nothing (the processes of a distributed run other than the main one).

    Raises:
        WorkDirInUseError: naming the run holding the folder (host, process id, start time) and what to do.
    """
    if not enabled:
        yield
        return
    path = osp.join(osp.abspath(work_dir), LOCK_NAME)
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'a+') as file:
        try:
            fcntl.lockf(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked = True
        except (BlockingIOError, PermissionError):
            file.seek(0)
            holder = file.read().strip() or 'another process'
            raise WorkDirInUseError(
                f'the work dir {osp.dirname(path)!r} is in use by another training run ({holder}; lock {path}); two '
                "runs in one work dir would overwrite each other's checkpoints. Wait for it to finish, or pass "
                'another --work-dir') from None
        except OSError as err:  # ENOLCK, EOPNOTSUPP: no locks on this file system
            print_log(f'the work dir {osp.dirname(path)!r} cannot be locked ({err}): nothing stops a second run '
                      'from writing into it', logger='current', level=logging.WARNING)
            locked = False
        if locked:
            file.seek(0)
            file.truncate()
            file.write(f'host {socket.gethostname()}, process {os.getpid()}, started '
                       f'{time.strftime("%Y-%m-%d %H:%M:%S")}\n')
            file.flush()
        yield  # closing the file releases the lock
