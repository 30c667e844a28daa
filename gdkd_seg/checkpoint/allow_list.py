"""What ``torch.load(weights_only=True)`` may rebuild from a checkpoint beyond tensors: MMEngine's message hub.

MMEngine 0.10.7 pickles into every training checkpoint a ``message_hub`` of :class:`HistoryBuffer` objects (numpy
arrays inside, and its class-wide table of statistics functions, written as ``getattr(HistoryBuffer, 'mean')`` or,
for a statistic a run registered itself, as that function's global name) and numpy scalars in ``meta``. Torch
refuses all of it by default; allow-listing the types and ``getattr`` as they are would let a crafted file reach
any attribute of any object (``getattr(getattr, '__self__')`` is the builtins module, then ``eval``), and numpy's
own ``dtype.__setstate__`` accepts an object field over raw bytes (a pointer the file chooses).

So no general-purpose callable is allow-listed. Each name a checkpoint may use resolves to a narrow stand-in that
rebuilds exactly the data MMEngine writes and refuses anything else (:class:`RefusedCheckpointContent`):

- ``builtins.getattr`` -> :func:`history_buffer_statistic`: a registered statistic of HistoryBuffer, by name;
- ``HistoryBuffer`` -> :class:`CheckedHistoryBuffer`: its state is checked key by key, its statistics are taken
  by name from what this process registered (``HistoryBuffer.register_statistics``), never from the file;
- ``numpy.dtype`` -> :class:`PickledDtype`, ``numpy.ndarray`` -> :class:`CheckedArray`, numpy's ``_reconstruct``
  and ``scalar``: plain bool, integer, float and complex data only (no object, string, structured dtypes).

:func:`plain_numpy` turns the stand-ins that may remain in a loaded checkpoint into numpy's own types. The list is
allowed only inside :func:`gdkd_seg.checkpoint.loading.load_checkpoint_file`, never for every ``torch.load`` of the
process.
"""
import pickle
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

# numpy's pickled type codes of the plain scalar types (np.dtype(code).__reduce__())
PLAIN_DTYPE_CODES = ('b1', 'i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4', 'u8', 'f2', 'f4', 'f8', 'c8', 'c16')
HISTORY_BUFFER_KEYS = ('max_length', '_log_history', '_count_history')
MINIMUM_TORCH = (2, 6)  # add_safe_globals takes (object, 'module.name') pairs from torch 2.6 on


class RefusedCheckpointContent(pickle.UnpicklingError):
    """A checkpoint holds something outside the allow-list (torch.load reports it as an UnpicklingError)."""


def _refuse(message: str) -> None:
    raise RefusedCheckpointContent(message)


# --- HistoryBuffer -------------------------------------------------------------------------------------------------

class StatisticName:
    """Stands for a statistics function in a loaded HistoryBuffer state: the name only, never the function."""

    __slots__ = ('name',)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f'StatisticName({self.name!r})'


def registered_statistics() -> Dict[str, Callable]:
    """HistoryBuffer's statistics in this process: the four defaults and any ``register_statistics`` added."""
    HistoryBuffer._set_default_statistics(HistoryBuffer)  # registers the defaults on the class-wide table
    return dict(HistoryBuffer._statistics_methods)


def history_buffer_statistic(owner: Any, name: Any) -> StatisticName:
    """Stands for ``getattr`` in checkpoints: only ``getattr(HistoryBuffer, <registered statistic>)`` resolves."""
    if (owner is not HistoryBuffer and owner is not CheckedHistoryBuffer) or type(name) is not str:
        _refuse(f'getattr({owner!r}, {name!r}) is not a HistoryBuffer statistic; only '
                'getattr(HistoryBuffer, <statistic name>) is allowed')
    if name not in registered_statistics():
        _refuse(f'HistoryBuffer statistic {name!r} is not registered in this process (registered: '
                f'{", ".join(sorted(registered_statistics()))})')
    return StatisticName(name)


def registered_statistic_globals() -> List[Tuple[StatisticName, str]]:
    """Allow-list pairs for statistics a run registered itself as module-level functions: their pickled global
    name resolves to a :class:`StatisticName`, not to the function (the file cannot call it)."""
    pairs = []
    for name, function in registered_statistics().items():
        qualname = getattr(function, '__qualname__', '')
        if '.' not in qualname and getattr(function, '__module__', None):
            pairs.append((StatisticName(name), f'{function.__module__}.{qualname}'))
    return pairs


class CheckedHistoryBuffer(HistoryBuffer):
    """Rebuilds a :class:`HistoryBuffer` from a checkpoint, and becomes one.

    MMEngine's ``HistoryBuffer.__setstate__`` puts every key of the file's state into the instance (so a file can
    plant ``__reduce_ex__``, which ``copy.deepcopy`` then calls on resume) and the file's functions into the
    class-wide statistics table. Here the state may hold only the buffer's data (an int and two plain 1-d arrays)
    and statistics names that this process registered; the object then turns into a plain HistoryBuffer.
    """

    def __new__(cls, *args):
        if args:
            _refuse('HistoryBuffer is rebuilt from its state only, without arguments')
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        _refuse('HistoryBuffer cannot be called from a checkpoint')

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            _refuse(f'HistoryBuffer state must be a dict, got {type(state).__name__}')
        extra = set(state) - set(HISTORY_BUFFER_KEYS) - {'statistics_methods'}
        if extra or not set(HISTORY_BUFFER_KEYS) <= set(state):
            _refuse(f'HistoryBuffer state must hold exactly {", ".join(HISTORY_BUFFER_KEYS)} (and '
                    f'statistics_methods); got {", ".join(sorted(map(repr, state)))}')
        max_length = state['max_length']
        if type(max_length) is not int or max_length < 1:
            _refuse(f'HistoryBuffer max_length must be a positive int, got {max_length!r}')
        histories = {}
        for key in ('_log_history', '_count_history'):
            value = state[key]
            if not isinstance(value, CheckedArray) or value.ndim != 1:
                _refuse(f'HistoryBuffer {key} must be a 1-d numpy array, got {type(value).__name__}')
            histories[key] = np.asarray(value)  # a CheckedArray view as numpy's own ndarray
        statistics = state.get('statistics_methods', {})
        if not isinstance(statistics, dict):
            _refuse('HistoryBuffer statistics_methods must be a dict')
        registered = registered_statistics()
        for name, value in statistics.items():
            if not isinstance(value, StatisticName):
                _refuse(f'HistoryBuffer statistic {name!r} is {type(value).__name__}, not a statistic name')
            if name not in registered:
                _refuse(f'HistoryBuffer statistic {name!r} is not registered in this process; import the module '
                        'that registers it (HistoryBuffer.register_statistics) before loading')
        self.__class__ = HistoryBuffer
        self.__dict__.update(max_length=max_length, **histories)


# --- numpy ---------------------------------------------------------------------------------------------------------

class PickledDtype:
    """Stands for ``numpy.dtype`` in checkpoints: one of :data:`PLAIN_DTYPE_CODES` and a byte order, checked before
    numpy sees it (numpy's own ``dtype.__setstate__`` takes fields, flags and sub-arrays from the file)."""

    def __init__(self, code: Any, align: Any = False, copy: Any = True) -> None:
        if type(code) is not str or code not in PLAIN_DTYPE_CODES or align is not False:
            _refuse(f'numpy dtype {code!r} (align={align!r}) is not a plain number type '
                    f'({", ".join(PLAIN_DTYPE_CODES)})')
        self.code, self.byteorder = code, '='

    def __setstate__(self, state: Any) -> None:
        # numpy writes (3, byteorder, None, None, None, -1, -1, 0) for every plain number type
        if not (isinstance(state, tuple) and len(state) == 8 and state[0] == 3 and state[1] in ('<', '>', '|', '=')
                and state[2:] == (None, None, None, -1, -1, 0)) or not hasattr(self, 'code'):
            _refuse(f'numpy dtype state {state!r} is not that of a plain number type')
        self.byteorder = state[1]

    def dtype(self) -> np.dtype:
        return np.dtype(self.code).newbyteorder(self.byteorder)


def _plain_dtype(value: Any) -> np.dtype:
    if not isinstance(value, PickledDtype) or not hasattr(value, 'code'):
        _refuse(f'numpy data must have a plain number dtype, got {type(value).__name__}')
    return value.dtype()


class CheckedArray(np.ndarray):
    """Stands for ``numpy.ndarray`` in checkpoints: ``__setstate__`` takes raw bytes of a plain number dtype only
    (numpy's would also take object arrays). Pickles as a plain ndarray; :func:`plain_numpy` unwraps it."""

    def __new__(cls, *args, **kwargs):
        _refuse('numpy arrays are rebuilt from their state only')

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1):
            _refuse('numpy array state must be (1, shape, dtype, is_fortran, bytes)')
        _, shape, dtype, is_fortran, data = state
        dtype = _plain_dtype(dtype)
        if not (isinstance(shape, tuple) and all(type(size) is int and size >= 0 for size in shape)):
            _refuse(f'numpy array shape {shape!r} is not a tuple of sizes')
        if type(is_fortran) is not bool or type(data) is not bytes or len(data) != dtype.itemsize * int(
                np.prod(shape, dtype=np.int64)):
            _refuse('numpy array data must be the raw bytes of its shape and dtype')
        np.ndarray.__setstate__(self, (1, shape, dtype, is_fortran, data))

    def __reduce__(self):
        return np.asarray(self).__reduce__()


def reconstruct_array(cls: Any, shape: Any, typecode: Any) -> CheckedArray:
    """Stands for numpy's ``_reconstruct``: the empty array that ``CheckedArray.__setstate__`` then fills."""
    if cls is not CheckedArray or type(shape) is not tuple or shape != (0,) or type(typecode) is not bytes \
            or typecode != b'b':
        _refuse(f'numpy _reconstruct{(cls, shape, typecode)!r} is not how numpy pickles an array')
    return np.ndarray.__new__(CheckedArray, (0,), np.int8)


def numpy_scalar(dtype: Any, data: Any = None) -> np.generic:
    """Stands for numpy's ``scalar``: a plain number from its raw bytes."""
    dtype = _plain_dtype(dtype)
    if type(data) is not bytes or len(data) != dtype.itemsize:
        _refuse(f'numpy scalar data must be {dtype.itemsize} raw bytes')
    return np.frombuffer(data, dtype=dtype)[0].copy()


def plain_numpy(node: Any) -> Any:
    """``node`` with every :class:`CheckedArray` and :class:`PickledDtype` left in it replaced by numpy's own types
    (containers are rebuilt only where something changed)."""
    if isinstance(node, CheckedArray):
        return np.asarray(node)
    if isinstance(node, PickledDtype):
        return node.dtype()
    if isinstance(node, dict):
        for key, value in node.items():
            plain = plain_numpy(value)
            if plain is not value:
                node[key] = plain
        return node
    if isinstance(node, list):
        for index, value in enumerate(node):
            plain = plain_numpy(value)
            if plain is not value:
                node[index] = plain
        return node
    if type(node) is tuple:
        plain = tuple(plain_numpy(value) for value in node)
        return plain if any(new is not old for new, old in zip(plain, node)) else node
    return node


# --- the allow-list ------------------------------------------------------------------------------------------------

def mmengine_checkpoint_globals() -> list:
    """``(stand-in, pickled global name)`` pairs for :func:`torch.serialization.safe_globals`; numpy 1.x
    pickles its functions under ``numpy.core.multiarray``, numpy 2 under ``numpy._core.multiarray``."""
    pairs = [(history_buffer_statistic, 'builtins.getattr'),
             (CheckedHistoryBuffer, f'{HistoryBuffer.__module__}.HistoryBuffer'),
             (PickledDtype, 'numpy.dtype'), (CheckedArray, 'numpy.ndarray')]
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        pairs += [(reconstruct_array, f'{module}._reconstruct'), (numpy_scalar, f'{module}.scalar')]
    return pairs


def check_torch_version() -> None:
    """Raise ``ImportError`` on a torch older than 2.6, whose allow-list cannot map a pickled name to a stand-in."""
    version = tuple(int(part) for part in torch.__version__.split('+')[0].split('.')[:2])
    if version < MINIMUM_TORCH:
        raise ImportError(f'gdkd_seg needs torch >= {".".join(map(str, MINIMUM_TORCH))} to load checkpoints '
                          f'safely (found {torch.__version__})')
