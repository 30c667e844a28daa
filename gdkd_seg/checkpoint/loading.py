"""Every checkpoint is read by :func:`load_checkpoint_file`: ``weights_only=True``, and a bad file named.

``weights_only=True`` is passed explicitly, so neither ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` nor a caller's
default can turn it off; what may be unpickled besides tensors is :mod:`.allow_list`, allowed for this load only
(a ``torch.load`` of your own is unaffected). :func:`gdkd_seg.engine.patches.apply` routes MMEngine's loads through
it (teachers, ``--resume``, ``load_from``, ``tools/test.py``, pretrained backbones, mmpretrain teachers):
``torch.load`` as ``mmengine.runner.checkpoint`` calls it (local files, pavi, s3), its URL download (:func:`load_url`;
MMEngine's loads with ``weights_only=False``), and the Runner's resume and load (:func:`resume_naming_the_setting`,
:func:`load_naming_the_setting`). A file that cannot be loaded raises :class:`CheckpointLoadError` naming the file,
the setting it came from and what is wrong with it; an unreadable latest checkpoint on ``--resume`` also names the
newest checkpoint of the work dir that loads, with the command that resumes from it.
"""
import functools
import glob
import os
import os.path as osp
import pickle
import re
import shlex
import sys
import urllib.parse
import zipfile
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, BinaryIO, Callable, Iterator, List, Optional

import torch

from ..utils.errors import UserError
from ..utils.files import not_a_regular_file
from .allow_list import mmengine_checkpoint_globals, plain_numpy, registered_statistic_globals
from .download import download_file
from .matching import shown_keys

ZIP_MAGIC = b'PK\x03\x04'  # torch.save's format since torch 1.6
PICKLE_MAGIC = b'\x80'  # torch.save's legacy format starts with a pickle protocol opcode

# which setting the checkpoint being loaded came from, for error messages (the outermost one wins)
_SETTING: ContextVar[Optional[str]] = ContextVar('gdkd_seg_checkpoint_setting', default=None)


class CheckpointLoadError(UserError, RuntimeError):
    """A checkpoint file that cannot be loaded: the message names the file, its setting and the problem."""


class CheckpointNotFoundError(UserError, FileNotFoundError):
    """A checkpoint path that does not exist; the message names the setting it came from."""


@contextmanager
def loading_for(setting: str) -> Iterator[None]:
    """Name ``setting`` (e.g. ``model.teacher_ckpt``) in errors of the checkpoint loads inside the block, unless an
    enclosing block named one already."""
    token = _SETTING.set(_SETTING.get() or setting)
    try:
        yield
    finally:
        _SETTING.reset(token)


def load_checkpoint_file(path: Any, map_location: Any = 'cpu', setting: Optional[str] = None,
                         source: Optional[str] = None) -> Any:
    """``torch.load(path, map_location, weights_only=True)`` with the allow-list of MMEngine's checkpoints, after
    checking that the file is one to read, and before returning that its weights are finite.

    Args:
        path: a local file (or an open binary file).
        map_location: as for :func:`torch.load`.
        setting: where the path came from, for errors (default: the enclosing :func:`loading_for`).
        source: how to name the file in errors when not by ``path`` (a URL).

    Returns:
        The checkpoint, with numpy data as numpy's own types.

    Raises:
        CheckpointNotFoundError: the file does not exist.
        CheckpointLoadError: the path is not a regular file (a directory, a named pipe, a device); the file is
            empty, truncated, not a checkpoint, a zip whose records would inflate beyond the file's size, or holds
            something that is not allowed; or its weights hold NaN or infinite values.
    """
    setting = setting or _SETTING.get() or 'checkpoint'
    name = source or (repr(os.fspath(path)) if isinstance(path, (str, os.PathLike)) else '(a stream)')
    try:
        problem = file_problem(path)
    except FileNotFoundError as err:
        raise CheckpointNotFoundError(f'{setting} {name} does not exist') from err
    if problem:
        raise CheckpointLoadError(f'{setting} {name} cannot be loaded: {problem}')
    try:
        # allowed for this load only; statistics a run registered resolve by name (see .allow_list)
        with torch.serialization.safe_globals(mmengine_checkpoint_globals() + registered_statistic_globals()):
            checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        if isinstance(err, FileNotFoundError):
            raise CheckpointNotFoundError(f'{setting} {name} does not exist') from err
        raise CheckpointLoadError(f'{setting} {name} cannot be loaded: {describe_load_failure(path, err)}') from err
    non_finite = non_finite_weights(checkpoint)
    if non_finite:
        raise CheckpointLoadError(f'{setting} {name} cannot be loaded: weights that are NaN or infinite, in '
                                  f'{shown_keys(non_finite)}. These are the weights of a run that diverged; take an '
                                  'earlier checkpoint of it')
    return plain_numpy(checkpoint)


def file_problem(path: Any) -> Optional[str]:
    """Why ``path`` (a local path or an open binary file) is not to be read by ``torch.load``, or None.

    Only regular files are read (opening a named pipe would wait forever for a writer). A zip archive, torch.save's
    format, is looked at through its central directory only: torch.save stores its records uncompressed, and torch
    inflates a compressed record in full before checking it, so records that would inflate beyond the file's own
    size (a zip bomb: 1 MB that inflates to 1 GiB) are refused before anything is inflated. A legacy (non-zip)
    checkpoint reads each tensor's bytes from the file itself, so it cannot hold more than its size.

    Raises:
        FileNotFoundError: a path that does not exist.
    """
    if isinstance(path, (str, os.PathLike)):
        kind = not_a_regular_file(path)
        if kind:
            return f'it is {kind}, not a regular file (a checkpoint is a file written by torch.save)'
        with open(path, 'rb') as file:
            return zip_inflation_problem(file)
    if hasattr(path, 'seekable') and path.seekable():
        return zip_inflation_problem(path)
    return None


def zip_inflation_problem(file: BinaryIO) -> Optional[str]:
    """Why the zip archive ``file`` (read from its current position, which is kept) would inflate beyond its size,
    or None (also for a file that is not a zip archive, or a damaged one: torch.load names those)."""
    start = file.tell()
    try:
        if file.read(len(ZIP_MAGIC)) != ZIP_MAGIC:
            return None
        size = file.seek(0, os.SEEK_END) - start
        file.seek(start)
        try:
            with zipfile.ZipFile(file) as archive:
                records = archive.infolist()
        except (zipfile.BadZipFile, ValueError, OSError):
            return None
    finally:
        file.seek(start)
    inflated = sum(record.file_size for record in records)
    if inflated <= size:
        return None
    compressed = sum(record.compress_type != zipfile.ZIP_STORED for record in records)
    return (f'its zip records would inflate to {inflated} bytes from a file of {size} bytes ({compressed} '
            'compressed record(s)); torch.save stores its records uncompressed, so it did not write this file, and '
            'nothing was inflated')


def non_finite_weights(checkpoint: Any) -> List[str]:
    """The keys of the floating-point tensors of a checkpoint's weights (its ``state_dict``, or ``model``, or the
    checkpoint itself) that hold a NaN or an infinity."""
    if not isinstance(checkpoint, dict):
        return []
    weights = next((checkpoint[key] for key in ('state_dict', 'model') if isinstance(checkpoint.get(key), dict)),
                   checkpoint)
    return [str(key) for key, value in weights.items()
            if isinstance(value, torch.Tensor) and (value.is_floating_point() or value.is_complex())
            and not bool(torch.isfinite(value).all())]


def describe_load_failure(path: Any, err: Exception) -> str:
    """What is wrong with the checkpoint file ``path`` that ``torch.load`` failed on with ``err``."""
    if isinstance(path, (str, os.PathLike)) and osp.isfile(path):
        size = osp.getsize(path)
        if size == 0:
            return 'the file is empty (0 bytes): its writing never happened or was cut off'
        with open(path, 'rb') as file:
            head = file.read(len(ZIP_MAGIC))
        if head == ZIP_MAGIC and not zipfile.is_zipfile(path):
            return (f'the file is truncated: a zip archive of {size} bytes whose end is missing (an interrupted '
                    'save, copy or download)')
        if head != ZIP_MAGIC and not head.startswith(PICKLE_MAGIC):
            return f'it is not a PyTorch checkpoint (it starts with {head!r}: a text file?)'
    if isinstance(err, pickle.UnpicklingError):
        # torch re-raises the unpickler's error with a generic text; the original is the context
        cause = err.__context__ if isinstance(err.__context__, pickle.UnpicklingError) else err
        reason = str(cause).strip().splitlines()[-1]
        unknown = re.search(r'GLOBAL (\S+) was not an allowed global', str(cause))
        if unknown:
            reason = (f'it names {unknown.group(1)}, which is not allowed; if that is a HistoryBuffer statistic '
                      'the run registered (HistoryBuffer.register_statistics), import the module that registers '
                      'it before loading')
        return (f'it holds pickled objects that are not plain weights ({reason}), so it was refused and nothing '
                "in it was run (torch.load(weights_only=True) with gdkd_seg's allow-list). Load it yourself only "
                "if you trust it, and save just its tensors: torch.save({'state_dict': ckpt['state_dict']}, path)")
    return f'{type(err).__name__}: {err}'


# --- MMEngine's loads ----------------------------------------------------------------------------------------------

class TorchWithSafeLoad:
    """``torch`` as ``mmengine.runner.checkpoint`` sees it: every attribute is torch's except ``load``."""

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)

    @staticmethod
    def load(f: Any, map_location: Any = None) -> Any:
        return load_checkpoint_file(f, map_location)


def load_url(url: str, model_dir: Optional[str] = None, map_location: Any = None, progress: bool = True) -> Any:
    """MMEngine's ``load_url`` (a download into torch.hub's ``<hub dir>/checkpoints``, reused when there), fetched
    with a timeout by :func:`gdkd_seg.checkpoint.download.download_file` and read by :func:`load_checkpoint_file`.

    ``progress`` is accepted for MMEngine's call and not shown.
    """
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached = osp.join(model_dir, osp.basename(urllib.parse.urlparse(url).path))
    if not osp.exists(cached):
        download_file(url, cached, _SETTING.get() or 'checkpoint')
    return load_checkpoint_file(cached, map_location, source=f'{url!r} (downloaded to {cached!r})')


def load_from_local_path(filename: str, map_location: Any = None) -> Any:
    """MMEngine's loader of local paths (``~`` expanded), read by :func:`load_checkpoint_file`, so that a directory
    or a named pipe is named for what it is rather than "can not be found"."""
    return load_checkpoint_file(osp.expanduser(filename), map_location)


def local_paths_checked(get_checkpoint_loader: Callable) -> classmethod:
    """MMEngine's ``CheckpointLoader._get_checkpoint_loader`` (bound), choosing :func:`load_from_local_path` where it
    would choose its loader of local paths."""
    @functools.wraps(get_checkpoint_loader)
    def wrapper(cls, path: str) -> Callable:
        loader = get_checkpoint_loader(path)
        return load_from_local_path if loader is cls._schemes.get('') else loader
    return classmethod(wrapper)


def _checkpoint_order(path: str) -> tuple:
    """Sort key of a work dir's checkpoints: the step in ``iter_N.pth`` / ``epoch_N.pth``, then the time."""
    match = re.search(r'(?:iter|epoch)_(\d+)\.pth$', path)
    return (int(match.group(1)) if match else -1, osp.getmtime(path))


def resume_alternative(work_dir: str, unreadable: str) -> str:
    """A sentence naming the newest other training checkpoint in ``work_dir`` that loads, and how to resume from
    it (MMEngine resumes from ``load_from`` when ``resume`` is set)."""
    candidates = [path for path in glob.glob(osp.join(work_dir, '*.pth'))
                  if osp.abspath(path) != osp.abspath(unreadable)]
    for path in sorted(candidates, key=_checkpoint_order, reverse=True):
        try:
            checkpoint = load_checkpoint_file(path)
        except CheckpointLoadError:
            continue
        if isinstance(checkpoint, dict) and 'message_hub' in checkpoint and 'meta' in checkpoint:
            if sys.argv and osp.basename(sys.argv[0]) == 'train.py':
                command = shlex.join(['python', *sys.argv, '--cfg-options', f'load_from={path}'])
            else:
                command = f'python tools/train.py CONFIG --work-dir {work_dir} --resume --cfg-options load_from={path}'
            return f'The previous checkpoint {path} loads; resume from it with:\n  {command}'
    return f'No other checkpoint in {work_dir} loads: start the run again without --resume.'


def resume_naming_the_setting(resume: Callable) -> Callable:
    """MMEngine's ``Runner.resume`` with the checkpoint's setting named in errors, and for an unreadable latest
    checkpoint of ``--resume`` the previous one that loads."""
    @functools.wraps(resume)
    def wrapper(self, filename: str, *args, **kwargs):
        latest = self._resume and self._load_from is None
        if latest:
            setting = f'--resume: the latest checkpoint (named in {osp.join(self.work_dir, "last_checkpoint")})'
        else:
            setting = 'load_from (resumed)' if self._load_from else 'the checkpoint to resume'
        with loading_for(setting):
            try:
                return resume(self, filename, *args, **kwargs)
            except CheckpointLoadError as err:
                if not latest:
                    raise
                raise CheckpointLoadError(f'{err}\n{resume_alternative(self.work_dir, filename)}') from err
    return wrapper


def load_naming_the_setting(load_checkpoint: Callable) -> Callable:
    """MMEngine's ``Runner.load_checkpoint`` with ``load_from`` named in errors (unless an enclosing setting is
    named)."""
    @functools.wraps(load_checkpoint)
    def wrapper(self, filename: str, *args, **kwargs):
        with loading_for('load_from'):
            return load_checkpoint(self, filename, *args, **kwargs)
    return wrapper
