"""The record a toy city keeps of itself, ``toy_city.json`` in its root: the generator version that drew it, its
size, seed and image counts, every file the generator wrote there, and whether the generation finished.

The generator writes the record before its first image (listing the files it is about to write) and again, marked
complete, after its last, so that ``--overwrite`` can always remove exactly the generator's files, also those of an
interrupted generation, and never a file of the user's.
"""
import json
import os
import posixpath
import shlex
from typing import Any, Optional

from ...utils.errors import UserError
from ...utils.files import atomic_write, printable_path

STAMP_FILE = 'toy_city.json'
GENERATOR_TOOL = 'tools/dataset_converters/make_toy_cityscapes.py'
# The folders the generator writes images and labels into: <kind>/<split>/<city>/<file>.
KINDS = ('leftImg8bit', 'gtFine')
SPLITS = ('train', 'val')


class StampError(UserError, ValueError):
    """A toy city's ``toy_city.json`` that cannot be read, or does not hold what the generator writes there."""


def regenerate_command(data_root: str) -> str:
    """The command that generates the default toy city into ``data_root``, quoted for a POSIX shell."""
    return f'python {GENERATOR_TOOL} --out {shlex.quote(printable_path(data_root))}'


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_generated_file(path: Any) -> bool:
    """Whether ``path`` is a relative ``<kind>/<split>/<city>/<file>`` path the generator can have written."""
    if not isinstance(path, str) or posixpath.normpath(path) != path or path.startswith('/'):
        return False
    parts = path.split('/')
    return len(parts) == 4 and parts[0] in KINDS and parts[1] in SPLITS and '..' not in parts


def _schema_problem(stamp: Any) -> Optional[str]:
    """What in a decoded stamp is not as the generator writes it, or None when all is."""
    if not isinstance(stamp, dict):
        return f'it holds a JSON {type(stamp).__name__}, not an object'
    expected = {
        'generator_version': (_is_int, 'an integer'),
        'size': (lambda v: isinstance(v, list) and len(v) == 2 and all(_is_int(x) and x > 0 for x in v),
                 'a [height, width] pair of positive integers'),
        'seed': (lambda v: _is_int(v) and v >= 0, 'a non-negative integer'),
        'num_images': (lambda v: isinstance(v, dict) and set(v) == set(SPLITS)
                       and all(_is_int(x) and x >= 0 for x in v.values()),
                       f'an object of non-negative image counts for {", ".join(SPLITS)}'),
        'files': (lambda v: isinstance(v, list) and all(_is_generated_file(x) for x in v),
                  f'a list of relative <{"|".join(KINDS)}>/<{"|".join(SPLITS)}>/<city>/<file> paths'),
        'complete': (lambda v: isinstance(v, bool), 'true or false'),
    }
    missing = [key for key in expected if key not in stamp]
    if missing:
        return f'the key(s) {", ".join(missing)} are missing'
    for key, (valid, described) in expected.items():
        if not valid(stamp[key]):
            return f'{key!r} is {json.dumps(stamp[key])[:80]}, expected {described}'
    return None


def read_stamp(data_root: str) -> Optional[dict]:
    """The record of the toy city in ``data_root``, or None when the folder has no ``toy_city.json``.

    Args:
        data_root: the toy city's root folder.

    Returns:
        The record: ``generator_version``, ``size``, ``seed``, ``num_images``, ``files`` (paths relative to
        ``data_root``, ``/``-separated) and ``complete``; or None.

    Raises:
        StampError: the file cannot be read, is not JSON, or lacks a key or holds a value of another type than the
            generator writes; the message names the file and the commands that regenerate the toy city.
    """
    path = os.path.join(data_root, STAMP_FILE)
    if not os.path.lexists(path):
        return None
    try:
        with open(path, 'rb') as file:
            stamp = json.loads(file.read().decode('utf-8'))
    except OSError as err:
        problem = f'it cannot be read ({type(err).__name__}: {err})'
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError: a truncated or foreign file
        problem = f'it is not valid JSON ({err})'
    else:
        problem = _schema_problem(stamp)
    if problem is None:
        return stamp
    root = printable_path(os.path.abspath(data_root))
    raise StampError(
        f'{printable_path(path)} is damaged or out of date: {problem}. This file records the generator version of the '
        f'toy city in {root} and which of the files there the generator wrote; without it the folder can be neither '
        f'used nor safely replaced. Regenerate the toy city: move any files of your own out of {root}, delete the '
        f'folder, and run {regenerate_command(data_root)}')


def generator_version(data_root: str) -> Optional[int]:
    """The generator version recorded in a toy city's ``toy_city.json``.

    Args:
        data_root: the toy city's root folder.

    Returns:
        The version, or None when the folder has no record (not generated, or by a generator that wrote none) or its
        generation did not finish.

    Raises:
        StampError: a damaged record (see :func:`read_stamp`).
    """
    stamp = read_stamp(data_root)
    return stamp['generator_version'] if stamp is not None and stamp['complete'] else None


def write_stamp(out_dir: str, stamp: dict) -> None:
    """Write the record ``stamp`` (the keys :func:`read_stamp` returns) into ``out_dir`` atomically: a crash leaves
    the previous record or the new one, never a truncated file.

    Args:
        out_dir: the toy city's root folder.
        stamp: the record.
    """
    atomic_write(os.path.join(out_dir, STAMP_FILE), lambda file: file.write(json.dumps(stamp, indent=1).encode()))
