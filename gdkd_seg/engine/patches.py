"""Everything importing ``gdkd_seg`` changes in other libraries, in one place (:func:`apply`, run once by
``gdkd_seg/__init__.py``; each change is idempotent).

1. MMEngine's checkpoint loads go through :func:`gdkd_seg.checkpoint.load_checkpoint_file`: no checkpoint a user is
   handed can run code (``weights_only=True`` with a narrow allow-list, also for URLs, which MMEngine loads with
   ``weights_only=False``), only regular files are read, URLs are fetched with a timeout, and a bad file is named
   with the setting it came from.
2. MMEngine's checkpoint saves are crash-safe: a kill or a full disk while saving never leaves a truncated latest
   checkpoint, and the checkpoint that falls out of ``max_keep_ckpts`` is deleted after the new one is saved;
   ``last_checkpoint`` is written and read as the path's bytes (a work dir whose name is not UTF-8).
3. torchvision imports beside a torch build its compiled ops do not match (PyPI has no CPU torchvision for torch
   2.13), so that MMEngine's environment report and mmpretrain, which need only its Python parts, import.
4. The ``pkg_resources is deprecated`` warning, which setuptools 80 prints whenever MMEngine resolves an
   ``mmseg::`` config path, is silenced.
5. MMEngine reads YAML (``.yaml``/``.yml`` configs, their ``_base_`` files and ``mmengine.load``) as plain data,
   with PyYAML's safe loader, whatever ``Loader`` a caller passes: a tag such as ``!!python/object/apply`` is
   refused (``yaml.YAMLError``) instead of running code. ``!!python/tuple``, which MMEngine writes for tuples when
   it dumps a YAML config, still reads as a tuple.

Nothing else changes: the allow-list is allowed inside the toolkit's loader only, so a ``torch.load`` of your own
returns what it did before the import, and a ``yaml.load`` of your own uses the ``Loader`` you pass.
``docs/reliability.md`` lists these changes for users.
"""
import sys
import warnings

import mmengine
import mmengine.runner
import mmengine.runner._flexible_runner
import mmengine.runner.checkpoint
import mmengine.runner.runner
import torch
import yaml
from mmengine.fileio.handlers.yaml_handler import YamlHandler
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmengine.runner import CheckpointLoader, Runner

from ..checkpoint import loading, saving
from ..checkpoint.allow_list import check_torch_version
from .distributed import is_main_process_by_env

# MMEngine's own functions and methods, kept while the replacements are installed: (owner, attribute) -> original
_ORIGINALS: dict = {}
# Keeps the torchvision op schemas alive for the life of the process.
_TORCHVISION_LIB = None
# the MMEngine version the crash-safe CheckpointHook method was written against
ATOMIC_SAVING_MMENGINE = '0.10.7'


def apply() -> None:
    """Make the five changes above (a second call changes nothing).

    Raises:
        ImportError: on a torch older than 2.6, whose allow-list cannot map a pickled name to a stand-in.
    """
    check_torch_version()
    make_torchvision_importable()
    route_checkpoint_loads()
    make_checkpoint_saves_atomic()
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)
    read_yaml_as_data()


def _replace(owner, name: str, replacement) -> None:
    """Set ``owner.name`` to ``replacement``, keeping the original (once)."""
    _ORIGINALS.setdefault((owner, name), getattr(owner, name))
    setattr(owner, name, replacement)


def route_checkpoint_loads() -> None:
    """Change 1: ``torch.load`` and ``load_url`` as ``mmengine.runner.checkpoint`` calls them, its loader of local
    paths, and the Runner's ``resume`` and ``load_checkpoint`` (which then name their setting in errors)."""
    if (Runner, 'resume') in _ORIGINALS:
        return
    _replace(mmengine.runner.checkpoint, 'torch', loading.TorchWithSafeLoad())
    _replace(mmengine.runner.checkpoint, 'load_url', loading.load_url)
    _replace(CheckpointLoader, '_get_checkpoint_loader',
             loading.local_paths_checked(CheckpointLoader._get_checkpoint_loader))
    _replace(Runner, 'resume', loading.resume_naming_the_setting(Runner.resume))
    _replace(Runner, 'load_checkpoint', loading.load_naming_the_setting(Runner.load_checkpoint))


def make_checkpoint_saves_atomic() -> None:
    """Change 2: MMEngine's ``save_checkpoint`` where the Runner and ``CheckpointHook`` look it up,
    ``CheckpointHook._save_checkpoint_with_step``, and ``find_latest_checkpoint`` (which reads the ``last_checkpoint``
    the new method writes). MMEngine versions other than 0.10.7 are left alone (warned)."""
    if (CheckpointHook, '_save_checkpoint_with_step') in _ORIGINALS:
        return
    if mmengine.__version__ != ATOMIC_SAVING_MMENGINE:
        warnings.warn(f'gdkd_seg: crash-safe checkpoint saving is written for MMEngine {ATOMIC_SAVING_MMENGINE}, '
                      f'found {mmengine.__version__}; checkpoints are saved by MMEngine unchanged', stacklevel=2)
        return
    atomic = saving.atomic_save_checkpoint(mmengine.runner.checkpoint.save_checkpoint)
    for module in (mmengine.runner.checkpoint, mmengine.runner.runner, mmengine.runner):
        _replace(module, 'save_checkpoint', atomic)
    _replace(CheckpointHook, '_save_checkpoint_with_step', saving.save_checkpoint_with_step)
    for module in (mmengine.runner.checkpoint, mmengine.runner.runner, mmengine.runner._flexible_runner,
                   mmengine.runner):
        _replace(module, 'find_latest_checkpoint', saving.find_latest_checkpoint)


class PlainDataLoader(getattr(yaml, 'CSafeLoader', yaml.SafeLoader)):
    """PyYAML's safe loader (its C implementation where PyYAML was built with libyaml): mappings, lists, strings,
    numbers, booleans, null and dates, plus ``!!python/tuple`` (a tuple of plain values, as MMEngine dumps tuples);
    any other tag raises ``yaml.constructor.ConstructorError``."""


PlainDataLoader.add_constructor('tag:yaml.org,2002:python/tuple',
                                lambda loader, node: tuple(loader.construct_sequence(node)))


def load_yaml_as_data(handler: YamlHandler, file, **kwargs):
    """``YamlHandler.load_from_fileobj`` with :class:`PlainDataLoader` in place of any ``Loader`` passed.

    Args:
        handler: the handler (unused: the loader does not depend on it).
        file: the open YAML file.
        **kwargs: ``yaml.load``'s other arguments.

    Returns:
        The plain data the file holds.

    Raises:
        yaml.YAMLError: for a file that is not YAML, or holds a tag other than those of plain data.
    """
    kwargs['Loader'] = PlainDataLoader
    return yaml.load(file, **kwargs)


def read_yaml_as_data() -> None:
    """Change 5: ``YamlHandler.load_from_fileobj``, through which ``mmengine.load`` and ``Config.fromfile`` read
    every YAML file, loads with :class:`PlainDataLoader` (MMEngine's own passes PyYAML's full ``Loader``, whose
    ``!!python/object/apply`` tag calls any function)."""
    if (YamlHandler, 'load_from_fileobj') in _ORIGINALS:
        return
    _replace(YamlHandler, 'load_from_fileobj', load_yaml_as_data)


def make_torchvision_importable() -> None:
    """Change 3: let torchvision's pure-Python parts import beside a torch build its compiled ops do not match.

    PyPI's torchvision wheels are built against CUDA torch. Beside the CPU build of torch their ``_C`` extension
    cannot load, and torchvision then fails at import while registering fake kernels for ``torchvision::nms``. The
    two op schemas are declared without kernels: torchvision imports, and calling ``torchvision.ops.nms`` still
    fails loudly ("no kernel"). A no-op where torchvision imports (or is absent).
    """
    global _TORCHVISION_LIB
    if 'torchvision' in sys.modules:
        return
    try:
        import torchvision  # noqa: F401, PLC0415  (the import is the test)
        return
    except ModuleNotFoundError:
        return
    except RuntimeError as err:
        if 'torchvision::nms' not in str(err):
            raise
    for name in [m for m in sys.modules if m == 'torchvision' or m.startswith('torchvision.')]:
        del sys.modules[name]
    _TORCHVISION_LIB = torch.library.Library('torchvision', 'FRAGMENT')
    for op in ('nms', 'qnms'):
        if not hasattr(torch.ops.torchvision, op):
            _TORCHVISION_LIB.define(f'{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
    import torchvision  # noqa: F401, F811, PLC0415  (now with the schemas declared)
    if is_main_process_by_env():
        print_log('torchvision compiled ops do not match this torch build; only its Python parts are usable',
                  logger='current', level=30)
