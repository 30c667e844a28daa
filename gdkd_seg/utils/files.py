"""Files the tools read and write: a path as it can be printed (:func:`printable_path`), what kind of file a path is
(:func:`not_a_regular_file`: a named pipe given as a checkpoint must be refused, not opened), writing so that a crash
never leaves a half-written file (:func:`atomic_write`), and the removal of the temporary files that writers which
died left behind (:func:`remove_stale_temporaries`)."""
import logging
import os
import os.path as osp
import re
import socket
import stat
import time
import uuid
from typing import Callable, Iterable, List, Optional

from mmengine.logging import print_log

# A temporary file left by a save whose writer is not known to be dead is removed only after this many seconds
# without a write (a save in progress writes continuously; an hour is far beyond any checkpoint's write time).
STALE_TEMPORARY_AGE_S = 3600


# what a path that is not a regular file is, by its stat mode
_FILE_KINDS = ((stat.S_ISDIR, 'a directory'), (stat.S_ISFIFO, 'a named pipe'), (stat.S_ISSOCK, 'a socket'),
               (stat.S_ISCHR, 'a character device'), (stat.S_ISBLK, 'a block device'))


def not_a_regular_file(path: str) -> Optional[str]:
    """What ``path`` is when it exists but is not a regular file (``'a directory'``, ``'a named pipe'``, ...), else
    None.

    Opening a named pipe blocks until something writes to it and a device can be endless, so the tools look before
    they open a path a user gave. Symbolic links are followed.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    mode = os.stat(path).st_mode
    if stat.S_ISREG(mode):
        return None
    return next((kind for is_kind, kind in _FILE_KINDS if is_kind(mode)), 'not a regular file')


def printable_path(path: str) -> str:
    """``path`` as it can be printed and logged whatever the terminal's encoding: a byte of a file name that is not
    UTF-8 (which Python holds as a lone surrogate) is shown as ``\\xff``.

    Args:
        path: a file system path as Python's ``os`` functions return it.

    Returns:
        The path with its undecodable bytes written as backslash escapes.
    """
    return os.fsencode(path).decode('utf-8', 'backslashreplace')


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


# ``temporary_path``'s names; the host part is optional, so ``.<name>.<pid>.<random>.tmp`` counts too
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
