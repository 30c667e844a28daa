"""The reproduction table file: which configs to run, with which seeds, and how to label them.

A table is YAML, read with ``yaml.safe_load``: plain data only (mappings, lists, strings, numbers, booleans), so a
table handed to a user cannot run code (a ``!!python/...`` tag is refused by the loader). A Python table loaded by
MMEngine's ``Config`` would run its code on loading, and a table needs nothing a config file needs. Example::

    title: Cityscapes val, 40k iterations        # optional
    seeds: [0, 1, 2]                             # the seeds of every row without its own
    config_root: ..                              # optional, relative to this file (default: its folder)
    metric: mIoU                                 # optional: the key of tools/test.py's metrics to tabulate
    save_predictions: false                      # optional: tools/test.py --out <run>/predictions
    cfg_options: {}                              # optional: options of every run (a row's win)
    rows:
      - name: r18_no_distill                     # the run folders are <out>/<name>/seed<k>/
        config: baselines/deeplabv3_r18_cityscapes_no_distill.py
        student: DeepLabV3-R18
        method: no distillation
        baseline: true                           # the row the student's other rows are compared with
      - name: r18_gdkd
        config: gdkd/deeplabv3_r101_to_r18_cityscapes.py
        student: DeepLabV3-R18
        method: GDKD
        cfg_options: {model.distill_losses.loss_gdkd.k: 4}   # optional, as tools/train.py --cfg-options
        seeds: [0]                               # optional, this row's own seeds
        teacher_from: teacher                    # optional: model.teacher_ckpt = that row's final checkpoint
        compare_to: [r18_kd, r18_dkd]            # optional: rows of the same student compared seed by seed

``cfg_options`` (the table's and a row's) may not set what the harness sets for each run: the seed, the work dir,
resuming, the launcher, the checkpoint evaluated, the teacher of a ``teacher_from`` row, nor any output folder
(``default_hooks.checkpoint.out_dir``, ``visualizer.save_dir``, ``test_evaluator.output_dir``, ...): a run writes
only into its folder, where a rerun finds it (:data:`HARNESS_SETTINGS`, :func:`harness_setting`).

Seeds pair runs: the same seed gives the rows of one student the same initial weights and data order, so the report
compares rows by their per-seed differences (:mod:`.report`).
"""
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import yaml

from ..utils.errors import UserError

TABLE_KEYS = ('title', 'seeds', 'config_root', 'metric', 'save_predictions', 'cfg_options', 'rows')
ROW_KEYS = ('name', 'config', 'student', 'method', 'baseline', 'cfg_options', 'seeds', 'teacher_from',
            'compare_to')
REQUIRED_ROW_KEYS = ('name', 'config', 'student', 'method')
# A row name is a folder name: no separators, nothing a shell or a Slurm job name would misread
_ROW_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')
# Characters that MMEngine's DictAction reads as structure (lists, tuples, quotes) or drops (spaces), so that a string
# holding them would not reach the config as written
_UNSAFE_OPTION_CHARS = re.compile(r'[\s,()\[\]\'"]')
# Settings the harness sets for every run: tools/train.py's --work-dir, --resume and --launcher, the table's seeds,
# tools/test.py's checkpoint (load_from) and --out, and where a run writes (checkpoints, logs, visualizations), which
# must stay in the run's folder for a rerun to find them. A key setting one of them, a dict holding one
# (``default_hooks.checkpoint``) or a value inside one is refused.
HARNESS_SETTINGS = ('work_dir', 'resume', 'load_from', 'launcher', 'randomness.seed',
                    'default_hooks.checkpoint.out_dir', 'default_hooks.checkpoint.filename_tmpl',
                    'default_hooks.logger.out_dir', 'visualizer.save_dir', 'test_evaluator.output_dir',
                    'test_evaluator.keep_results')
# The teacher checkpoint of a row with ``teacher_from``: the final checkpoint of its teacher row
TEACHER_SETTING = 'model.teacher_ckpt'
# Names of output folders, wherever they appear in a key (a hook, a visualization backend, an evaluator of a list)
OUTPUT_FOLDER_NAMES = ('work_dir', 'out_dir', 'save_dir', 'output_dir')


class TableError(UserError, ValueError):
    """A table file that cannot be run; the message names the file, the row and the key."""


@dataclass(frozen=True)
class Row:
    """One line of the table: a config trained and evaluated once per seed.

    Attributes:
        name: the row's folder name under the output folder.
        config: the config file, as an absolute path.
        student: the student's label; rows of one student share the baseline.
        method: the method's label (``no distillation``, ``KD``, ...).
        baseline: whether this row is its student's no-distillation baseline.
        cfg_options: ``--cfg-options`` of its runs, values as written on the command line.
        seeds: the seeds it runs with.
        teacher_from: the row whose final checkpoint is this row's ``model.teacher_ckpt``, or None.
        compare_to: rows of the same student this row is compared with seed by seed (besides its baseline).
    """
    name: str
    config: str
    student: str
    method: str
    baseline: bool = False
    cfg_options: Dict[str, str] = field(default_factory=dict)
    seeds: Tuple[int, ...] = ()
    teacher_from: Optional[str] = None
    compare_to: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    """A parsed table file (see the module docstring)."""
    path: str
    title: str
    rows: Tuple[Row, ...]
    metric: str = 'mIoU'
    save_predictions: bool = False

    def row(self, name: str) -> Row:
        """The row called ``name``; KeyError naming the table's rows when there is none."""
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f'{self.path}: no row {name!r} (rows: {", ".join(row.name for row in self.rows)})')

    def baseline_of(self, row: Row) -> Optional[Row]:
        """The baseline row of ``row``'s student, or None when the table has none."""
        return next((other for other in self.rows if other.baseline and other.student == row.student), None)


def option_value(value: Any, where: str) -> str:
    """``value`` written as ``--cfg-options`` expects it (MMEngine's DictAction parses it back).

    Args:
        value: a YAML scalar (string, number, boolean, null) or a list of them (a tuple on the command line when it
            is written as one in Python).
        where: what to name in an error (the file, row and key).

    Raises:
        TableError: for a mapping, a nested list, another type, or a string that DictAction would not read back as
            written (spaces, commas, brackets, quotes).
    """
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        if not value or _UNSAFE_OPTION_CHARS.search(value):
            raise TableError(f'{where}: the string {value!r} cannot be passed through --cfg-options unchanged '
                             '(empty, or with spaces, commas, brackets or quotes); set it in a config file instead')
        return value
    if isinstance(value, (list, tuple)):
        if not value or any(isinstance(item, (list, tuple, dict)) for item in value):
            raise TableError(f'{where}: lists must be non-empty and hold plain values, got {value!r}')
        items = ','.join(option_value(item, where) for item in value)
        return f'({items},)' if isinstance(value, tuple) else f'[{items}]'
    raise TableError(f'{where}: {type(value).__name__} values are not allowed in cfg_options (use strings, numbers, '
                     f'booleans, null or lists of them), got {value!r}')


def harness_setting(key: str, teacher_from: bool = False) -> Optional[str]:
    """The setting the harness owns that the ``--cfg-options`` key ``key`` would override, or None.

    Args:
        key: a dotted config key; a list index in it (``custom_hooks.0.out_dir``) stands for any item.
        teacher_from: whether the key is an option of a row with ``teacher_from`` (whose ``model.teacher_ckpt`` the
            harness sets).

    Returns:
        The owned setting the key is, holds (``default_hooks.checkpoint`` holds ``default_hooks.checkpoint.out_dir``)
        or lies inside of; ``key`` itself when it names an output folder anywhere (see ``OUTPUT_FOLDER_NAMES``).
    """
    parts = [part for part in key.split('.') if part and not part.isdigit()]
    if any(part in OUTPUT_FOLDER_NAMES for part in parts):
        return key
    for owned in HARNESS_SETTINGS + ((TEACHER_SETTING,) if teacher_from else ()):
        owned_parts = owned.split('.')
        common = min(len(parts), len(owned_parts))
        if parts[:common] == owned_parts[:common]:
            return owned
    return None


def refuse_harness_settings(keys: Iterable[str], where: str, teacher_from: bool = False) -> None:
    """Refuse options that override what the harness sets for each run (see :func:`harness_setting`).

    Args:
        keys: the options' dotted keys.
        where: what to name in the error (the file, the row and whose options they are).
        teacher_from: whether they are options of a row with ``teacher_from``.

    Raises:
        TableError: naming ``where``, the first such key and the setting it overrides.
    """
    for key in keys:
        owned = harness_setting(key, teacher_from)
        if owned is not None:
            what = 'is' if owned == key else f'overrides {owned}, which is'
            raise TableError(f'{where}: {key} {what} set by the harness (it sets the seed, the teacher of '
                             'teacher_from, resuming, the launcher and the evaluated checkpoint, and keeps every '
                             'output in the run\'s folder <out>/<row>/seed<k>/); remove it from cfg_options')


def _options(value: Any, where: str, teacher_from: bool = False) -> Dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TableError(f'{where}: cfg_options must be a mapping of dotted config keys to values, '
                         f'e.g. {{train_cfg.max_iters: 100}}, got {value!r}')
    options = {}
    for key, item in value.items():
        if not isinstance(key, str) or not re.match(r'^[A-Za-z_][\w.]*$', key):
            raise TableError(f'{where}: {key!r} is not a dotted config key such as model.teacher_ckpt')
        refuse_harness_settings([key], where, teacher_from)
        options[key] = option_value(item, f'{where} {key}')
    return options


def _seeds(value: Any, where: str) -> Tuple[int, ...]:
    if not isinstance(value, list) or not value or \
            not all(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 for seed in value):
        raise TableError(f'{where}: seeds must be a non-empty list of integers >= 0, e.g. [0, 1, 2], got {value!r}')
    if len(set(value)) != len(value):
        raise TableError(f'{where}: seeds repeat a seed: {value!r}')
    return tuple(value)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TableError(f'{where}: expected a non-empty string, got {value!r}')
    return value


def _unknown_keys(mapping: dict, known: Sequence[str], where: str) -> None:
    unknown = [key for key in mapping if key not in known]
    if unknown:
        raise TableError(f'{where}: unknown key(s) {", ".join(map(repr, unknown))}; the keys are '
                         f'{", ".join(known)}')


def _row(entry: Any, index: int, default_seeds: Optional[Tuple[int, ...]], table_options: Dict[str, str],
         config_root: str, path: str) -> Row:
    where = f'{path}: rows[{index}]'
    if not isinstance(entry, dict):
        raise TableError(f'{where}: a row is a mapping with the keys {", ".join(REQUIRED_ROW_KEYS)}, got {entry!r}')
    if isinstance(entry.get('name'), str):
        where = f'{path}: row {entry["name"]!r}'
    _unknown_keys(entry, ROW_KEYS, where)
    missing = [key for key in REQUIRED_ROW_KEYS if key not in entry]
    if missing:
        raise TableError(f'{where}: missing key(s) {", ".join(missing)}')
    name = _text(entry['name'], f'{where} name')
    if not _ROW_NAME.match(name):
        raise TableError(f'{where}: the name {name!r} is a folder name: letters, digits, _, . and - only')
    config = osp.normpath(osp.join(config_root, _text(entry['config'], f'{where} config')))
    if not osp.isfile(config):
        raise TableError(f'{where} config: {config} does not exist (config paths are relative to config_root, '
                         f'{config_root})')
    baseline = entry.get('baseline', False)
    if not isinstance(baseline, bool):
        raise TableError(f'{where} baseline: expected true or false, got {baseline!r}')
    if 'seeds' in entry:
        seeds = _seeds(entry['seeds'], f'{where} seeds')
    elif default_seeds is None:
        raise TableError(f'{where}: no seeds (give the table a top-level seeds list or the row its own)')
    else:
        seeds = default_seeds
    teacher_from = entry.get('teacher_from')
    if teacher_from is not None:
        teacher_from = _text(teacher_from, f'{where} teacher_from')
    compare_to = entry.get('compare_to', [])
    compare_to = [compare_to] if isinstance(compare_to, str) else compare_to
    if not isinstance(compare_to, list):
        raise TableError(f'{where} compare_to: expected a row name or a list of them, got {compare_to!r}')
    compare_to = tuple(_text(name, f'{where} compare_to') for name in compare_to)
    if teacher_from is not None:  # a table-wide model.teacher_ckpt would replace this row's teacher
        refuse_harness_settings(table_options, f"{where}: the table's cfg_options", teacher_from=True)
    options = _options(entry.get('cfg_options'), f'{where} cfg_options', teacher_from is not None)
    return Row(name=name, config=config, student=_text(entry['student'], f'{where} student'),
               method=_text(entry['method'], f'{where} method'), baseline=baseline,
               cfg_options=dict(table_options, **options), seeds=seeds, teacher_from=teacher_from,
               compare_to=compare_to)


def _check_rows(rows: List[Row], path: str) -> None:
    """Names unique, one baseline per student, ``teacher_from`` naming a row of one seed that needs no teacher,
    ``compare_to`` another row of the same student sharing a seed."""
    names = [row.name for row in rows]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise TableError(f'{path}: row names must be unique (each is a folder), repeated: {", ".join(repeated)}')
    for student in dict.fromkeys(row.student for row in rows):
        baselines = [row.name for row in rows if row.student == student and row.baseline]
        if len(baselines) > 1:
            raise TableError(f'{path}: student {student!r} has {len(baselines)} baseline rows '
                             f'({", ".join(baselines)}); mark one')
    for row in rows:
        for name in row.compare_to:
            where = f'{path}: row {row.name!r} compare_to'
            other = next((other for other in rows if other.name == name), None)
            if other is None or other is row:
                raise TableError(f'{where}: {name!r} must name another row of the table')
            if other.student != row.student or not set(other.seeds) & set(row.seeds):
                raise TableError(f'{where}: the row {other.name!r} must have the same student ({row.student!r}) and '
                                 'share seeds: runs are compared seed by seed')
        if row.teacher_from is None:
            continue
        where = f'{path}: row {row.name!r} teacher_from'
        if row.teacher_from not in names:
            raise TableError(f'{where}: no row is called {row.teacher_from!r}')
        teacher = rows[names.index(row.teacher_from)]
        if teacher.teacher_from is not None:
            raise TableError(f'{where}: the row {teacher.name!r} learns from a teacher row itself; a teacher row '
                             'must be trained on its own')
        if len(teacher.seeds) != 1:
            raise TableError(f'{where}: the row {teacher.name!r} has {len(teacher.seeds)} seeds; a teacher row is '
                             'trained once (give it seeds: [0])')


def load_table(path: str, seeds: Optional[Sequence[int]] = None) -> Table:
    """Read and check a table file.

    Args:
        path: the YAML file.
        seeds: replaces the table's top-level seeds (rows with their own seeds keep them).

    Returns:
        The table, every config path checked to exist.

    Raises:
        TableError: naming the file, the row and the key of the first problem found.
    """
    try:
        with open(path, encoding='utf-8') as file:
            data = yaml.safe_load(file)
    except OSError as error:
        raise TableError(f'{path}: cannot read the table file ({error})') from error
    except yaml.YAMLError as error:
        raise TableError(f'{path}: not a plain YAML table (only mappings, lists, strings, numbers and booleans '
                         f'are read; no tags): {error}') from error
    if not isinstance(data, dict):
        raise TableError(f'{path}: a table is a mapping with the keys seeds and rows, got {type(data).__name__}')
    _unknown_keys(data, TABLE_KEYS, path)
    if seeds is not None:
        default_seeds = _seeds(list(seeds), f'{path}: --seeds')
    elif 'seeds' in data:
        default_seeds = _seeds(data['seeds'], f'{path}: seeds')
    else:
        default_seeds = None
    config_root = osp.normpath(osp.join(osp.dirname(osp.abspath(path)),
                                        _text(data.get('config_root', '.'), f'{path}: config_root')))
    table_options = _options(data.get('cfg_options'), f'{path}: cfg_options')
    entries = data.get('rows')
    if not isinstance(entries, list) or not entries:
        raise TableError(f'{path}: rows must be a non-empty list of rows, got {entries!r}')
    rows = [_row(entry, index, default_seeds, table_options, config_root, path) for index, entry in enumerate(entries)]
    _check_rows(rows, path)
    save_predictions = data.get('save_predictions', False)
    if not isinstance(save_predictions, bool):
        raise TableError(f'{path}: save_predictions: expected true or false, got {save_predictions!r}')
    title = _text(data.get('title', osp.splitext(osp.basename(path))[0]), f'{path}: title')
    return Table(path=osp.abspath(path), title=title, rows=tuple(rows),
                 metric=_text(data.get('metric', 'mIoU'), f'{path}: metric'), save_predictions=save_predictions)
