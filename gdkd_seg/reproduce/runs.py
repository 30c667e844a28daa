"""Running a table: every (row, seed) trained by ``tools/train.py`` and evaluated by ``tools/test.py`` in its own
folder ``<out>/<row>/seed<k>/``, through one of the tools' launchers, finished runs skipped, interrupted ones resumed.

A run's folder holds, besides what the tools write:

- ``settings.json``: the config, seed and options it was started with; a later invocation with other settings is
  refused instead of mixing two experiments in one folder;
- ``train.log`` / ``eval.log``: the tools' output (appended to by every session, each command first);
- ``trained.json``: written, atomically, once training has finished: its final checkpoint and wall time;
- ``result.json``: written, atomically, last: the evaluation's metrics. A run with it is finished and skipped.

What happens to a run (:func:`next_step`): ``result.json`` -> nothing; ``trained.json`` -> evaluate;
``last_checkpoint`` (MMEngine's pointer to the latest checkpoint) -> train with ``--resume`` (the tools resume
exactly, data order and random streams included), then evaluate; else train, then evaluate.
"""
import json
import os
import os.path as osp
import shlex
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from ..utils.errors import ConfigError, UserError
from ..utils.files import atomic_write
from .table import Row, Table, TableError, refuse_harness_settings

TOOLS = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools')
LAUNCHERS = ('none', 'pytorch', 'slurm')
SETTINGS_FILE, TRAINED_FILE, RESULT_FILE = 'settings.json', 'trained.json', 'result.json'


_PRINT_LOCK = threading.Lock()


def print_line(message: str) -> None:
    """Print one line whole, also when runs report from several threads at once."""
    with _PRINT_LOCK:
        sys.stdout.write(message + '\n')
        sys.stdout.flush()


class RunFailed(RuntimeError):
    """A tool exited with an error, or left no checkpoint or metrics; the message names the run and its log."""


def check_tools() -> None:
    """Raise a :class:`~gdkd_seg.utils.errors.UserError` when the repository's ``tools/``, which the harness runs,
    are not beside the package (an install that is not a clone of the repository)."""
    if not osp.isfile(osp.join(TOOLS, 'train.py')):
        raise UserError(f'the harness runs the repository\'s tools/ ({TOOLS} not found): run it from a clone of '
                        'gdkd_seg installed with pip install -e .')


@dataclass(frozen=True)
class Run:
    """One (row, seed) of a table and its folder."""
    row: Row
    seed: int
    work_dir: str

    @property
    def label(self) -> str:
        return f'{self.row.name}/seed{self.seed}'


def runs_of(table: Table, out: str) -> List[Run]:
    """Every (row, seed) of ``table``, in table order, seeds inner, with its folder under ``out``."""
    return [Run(row, seed, osp.join(osp.abspath(out), row.name, f'seed{seed}')) for row in table.rows
            for seed in row.seeds]


def next_step(work_dir: str) -> str:
    """What a run needs: ``'done'``, ``'evaluate'``, ``'resume'`` (an interrupted training) or ``'train'``."""
    if osp.isfile(osp.join(work_dir, RESULT_FILE)):
        return 'done'
    if osp.isfile(osp.join(work_dir, TRAINED_FILE)):
        return 'evaluate'
    if osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        return 'resume'
    return 'train'


def read_json(path: str) -> dict:
    with open(path, encoding='utf-8') as file:
        return json.load(file)


def write_json(path: str, data: dict) -> None:
    """Write ``data`` to ``path`` atomically: a reader finds the complete file or none."""
    atomic_write(path, lambda file: file.write(json.dumps(data, indent=1).encode('utf-8')))


@dataclass(frozen=True)
class Command:
    """A command line and the environment variables it adds to this process's."""
    argv: List[str]
    env: Dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return shlex.join([f'{key}={value}' for key, value in self.env.items()] + self.argv)


def cfg_options(options: Dict[str, str]) -> List[str]:
    """``--cfg-options`` arguments of a dict of dotted keys (none for an empty dict)."""
    return ['--cfg-options'] + [f'{key}={value}' for key, value in options.items()] if options else []


def parse_cfg_options(options: Sequence[str]) -> Dict[str, str]:
    """``KEY=VALUE`` strings of a command line as a dict, values as written (the tools parse them).

    Raises:
        ConfigError: naming a string without ``=``.
    """
    parsed = {}
    for option in options:
        if '=' not in option:
            raise ConfigError(f'--cfg-options {option}: expected KEY=VALUE')
        key, value = option.split('=', 1)
        parsed[key] = value
    return parsed


@dataclass(frozen=True)
class Launcher:
    """How the tools are started: ``none`` (one process, ``python tools/train.py``), ``pytorch``
    (``tools/dist_train.sh`` / ``tools/dist_test.sh`` on ``gpus`` GPUs through torchrun) or ``slurm``
    (``tools/slurm_train.sh`` on ``gpus`` GPUs of ``partition``; evaluation by one ``srun`` task on one GPU)."""
    kind: str = 'none'
    gpus: int = 1
    partition: Optional[str] = None
    gpus_per_node: int = 8
    python: str = sys.executable

    def __post_init__(self) -> None:
        if self.kind not in LAUNCHERS:
            raise ConfigError(f'launcher {self.kind!r}: choose one of {", ".join(LAUNCHERS)}')
        if self.gpus < 1 or self.gpus_per_node < 1:
            raise ConfigError(f'--gpus {self.gpus} / --gpus-per-node {self.gpus_per_node}: must be >= 1')
        if self.kind == 'slurm' and not self.partition:
            raise ConfigError('--launcher slurm needs --partition (the Slurm partition to run on)')

    def train(self, run: Run, options: Dict[str, str], resume: bool) -> Command:
        flags = ['--work-dir', run.work_dir] + (['--resume'] if resume else []) + cfg_options(options)
        if self.kind == 'none':
            return Command([self.python, osp.join(TOOLS, 'train.py'), run.row.config] + flags)
        if self.kind == 'pytorch':
            return Command([osp.join(TOOLS, 'dist_train.sh'), run.row.config, str(self.gpus)] + flags)
        return Command([osp.join(TOOLS, 'slurm_train.sh'), self.partition, self.job_name(run), run.row.config] + flags,
                       {'GPUS': str(self.gpus), 'GPUS_PER_NODE': str(min(self.gpus, self.gpus_per_node)),
                       'PYTHON': self.python})

    def test(self, run: Run, checkpoint: str, options: Dict[str, str], predictions: Optional[str]) -> Command:
        flags = ['--work-dir', osp.join(run.work_dir, 'eval')] + (['--out', predictions] if predictions else []) + \
            cfg_options(options)
        if self.kind == 'pytorch':
            return Command([osp.join(TOOLS, 'dist_test.sh'), run.row.config, checkpoint, str(self.gpus)] + flags)
        test = [self.python, osp.join(TOOLS, 'test.py'), run.row.config, checkpoint] + flags
        if self.kind == 'none':
            return Command(test)
        # one task on one GPU: evaluation is minutes, not worth a multi-GPU allocation
        return Command(['srun', '-p', self.partition, f'--job-name={self.job_name(run)}-eval', '--gres=gpu:1',
                       '--ntasks=1', '--kill-on-bad-exit=1'] + test,
                       {'PYTHONPATH': os.pathsep.join(filter(None, (osp.dirname(TOOLS),
                                                                    os.environ.get('PYTHONPATH'))))})

    @staticmethod
    def job_name(run: Run) -> str:
        return f'{run.row.name}-seed{run.seed}'


def run_options(run: Run, extra: Dict[str, str], teacher_ckpt: Optional[str]) -> Dict[str, str]:
    """The ``--cfg-options`` of a run: the table's, then ``extra`` (the command line's), the seed, and the teacher
    checkpoint of ``teacher_from``.

    Raises:
        TableError: when the row's options or ``extra`` set what the harness sets
            (:func:`~gdkd_seg.reproduce.table.harness_setting`: the seed, the work dir, an output folder, the teacher
            of a row with ``teacher_from``, ...).
    """
    options = dict(run.row.cfg_options, **extra)
    refuse_harness_settings(options, f'row {run.row.name!r} cfg_options', run.row.teacher_from is not None)
    options['randomness.seed'] = str(run.seed)
    if teacher_ckpt is not None:
        options['model.teacher_ckpt'] = teacher_ckpt
    return options


def check_settings(run: Run, options: Dict[str, str], record: bool = True) -> None:
    """Refuse to continue a run started with other settings; on its first start, record them (unless not ``record``).

    Raises:
        TableError: naming the folder and what differs.
    """
    settings = {'config': run.row.config, 'seed': run.seed, 'cfg_options': options}
    path = osp.join(run.work_dir, SETTINGS_FILE)
    if not osp.isfile(path):
        if record:
            write_json(path, settings)
        return
    before = read_json(path)
    if before != settings:
        changed = [key for key in settings if before.get(key) != settings[key]]
        then, now = {key: before.get(key) for key in changed}, {key: settings[key] for key in changed}
        raise TableError(f'{run.work_dir} holds a run started with other settings ({", ".join(changed)}: {then}, '
                         f'now {now}); choose another --out, or delete the folder to rerun it')


def read_test_metrics(eval_dir: str) -> Dict[str, float]:
    """The metrics ``tools/test.py`` wrote: MMEngine's ``<work dir>/<timestamp>/<timestamp>.json``, newest first."""
    for stamp in sorted(os.listdir(eval_dir), reverse=True) if osp.isdir(eval_dir) else ():
        path = osp.join(eval_dir, stamp, f'{stamp}.json')
        if osp.isfile(path):
            return read_json(path)
    raise RunFailed(f'{eval_dir}: tools/test.py finished but wrote no metrics file (<timestamp>/<timestamp>.json)')


def _call(command: Command, log_path: str, threads: Optional[int], what: str, run: Run) -> float:
    """Run ``command`` with its output appended to ``log_path``; returns its wall time in seconds."""
    env = dict(os.environ, **command.env)
    if threads is not None:  # torch sizes its intra-op pool from OMP_NUM_THREADS at start-up
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    os.makedirs(osp.dirname(log_path), exist_ok=True)
    started = time.time()
    with open(log_path, 'a', encoding='utf-8') as log:
        log.write(f'$ {command}\n')
        log.flush()
        returncode = subprocess.call(command.argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    if returncode != 0:
        with open(log_path, encoding='utf-8', errors='replace') as log:
            tail = log.read()[-3000:]
        raise RunFailed(f'{run.label}: {what} failed (exit status {returncode}); output in {log_path}:\n{tail}')
    return time.time() - started


def perform(run: Run, table: Table, launcher: Launcher, options: Dict[str, str], threads: Optional[int],
            log: Callable[[str], None] = print_line) -> dict:
    """Bring one run to its result: train (or resume) unless trained, evaluate unless evaluated.

    Returns:
        The content of its ``result.json``: ``row``, ``seed``, ``metrics`` (all that ``tools/test.py`` reported),
        ``checkpoint`` and ``train_seconds`` (the wall time of the training session that finished it).

    Raises:
        RunFailed: a tool failed (the message names the run and its log).
        TableError: the folder holds a run with other settings.
    """
    check_settings(run, options)
    step = next_step(run.work_dir)
    if step == 'done':
        return read_json(osp.join(run.work_dir, RESULT_FILE))
    if step in ('train', 'resume'):
        log(f'[reproduce] {run.label}: training{" (resuming the interrupted run)" if step == "resume" else ""}')
        seconds = _call(launcher.train(run, options, resume=step == 'resume'), osp.join(run.work_dir, 'train.log'),
                        threads, 'training', run)
        pointer = osp.join(run.work_dir, 'last_checkpoint')
        if not osp.isfile(pointer):
            raise RunFailed(f'{run.label}: training finished without a checkpoint ({pointer} missing); the harness '
                            'evaluates the final checkpoint, so the config must save one at the end')
        with open(pointer, encoding='utf-8') as file:
            write_json(osp.join(run.work_dir, TRAINED_FILE),
                       {'checkpoint': osp.abspath(file.read().strip()), 'train_seconds': seconds})
    trained = read_json(osp.join(run.work_dir, TRAINED_FILE))
    log(f'[reproduce] {run.label}: evaluating')
    eval_dir = osp.join(run.work_dir, 'eval')
    predictions = osp.join(run.work_dir, 'predictions') if table.save_predictions else None
    for folder in (eval_dir, predictions):  # a half-finished evaluation starts again from nothing
        if folder and osp.isdir(folder):
            shutil.rmtree(folder)
    _call(launcher.test(run, trained['checkpoint'], evaluation_options(options), predictions),
          osp.join(run.work_dir, 'eval.log'), threads, 'evaluation', run)
    metrics = read_test_metrics(eval_dir)
    if table.metric not in metrics:
        raise RunFailed(f'{run.label}: the evaluation reported no {table.metric!r} (it reported '
                        f'{", ".join(metrics)}); set the table\'s metric to one of them')
    result = {'row': run.row.name, 'seed': run.seed, 'metrics': metrics, 'checkpoint': trained['checkpoint'],
              'train_seconds': trained['train_seconds']}
    write_json(osp.join(run.work_dir, RESULT_FILE), result)
    log(f'[reproduce] {run.label}: {table.metric} {metrics[table.metric]:.2f}')
    return result


def _stages(runs: Sequence[Run]) -> List[List[Run]]:
    """Teacher rows (and rows without ``teacher_from``) first, then the rows that learn from them."""
    return [stage for stage in ([run for run in runs if run.row.teacher_from is None],
                                [run for run in runs if run.row.teacher_from is not None]) if stage]


def teacher_checkpoint(run: Run, runs: Sequence[Run], placeholder: bool = False) -> Optional[str]:
    """The final checkpoint of ``run``'s ``teacher_from`` row, None for a row without one.

    Args:
        placeholder: for a teacher not trained yet, return ``<final checkpoint of ROW/seedK>`` instead of raising.

    Raises:
        RunFailed: when that row has not finished training.
    """
    if run.row.teacher_from is None:
        return None
    teacher = next(other for other in runs if other.row.name == run.row.teacher_from)
    path = osp.join(teacher.work_dir, TRAINED_FILE)
    if osp.isfile(path):
        return read_json(path)['checkpoint']
    if placeholder:
        return f'<final checkpoint of {teacher.label}>'
    raise RunFailed(f'{run.label}: its teacher row {teacher.label} has not finished training')


def evaluation_options(options: Dict[str, str]) -> Dict[str, str]:
    """A run's options for ``tools/test.py``: all but the teacher, which evaluating a student never builds."""
    return {key: value for key, value in options.items() if key != 'model.teacher_ckpt'}


def execute(table: Table, out: str, launcher: Launcher, jobs: int = 1, extra_options: Optional[Dict[str, str]] = None,
            log: Callable[[str], None] = print_line) -> List[str]:
    """Run every (row, seed) of ``table`` that has not finished, up to ``jobs`` at a time.

    With ``launcher.kind == 'none'`` each run gets ``cores // min(jobs, runs waiting)`` threads. Teacher rows run
    before the rows that learn from them. A failing run does not stop the others.

    Returns:
        The failures, one message each (empty when every run finished).

    Raises:
        ConfigError: ``jobs`` < 1, or > 1 with the ``pytorch`` launcher (whose runs each take all GPUs).
        TableError: options the harness sets itself, or a run folder holding other settings, before any run starts.
    """
    check_tools()
    if jobs < 1 or (jobs > 1 and launcher.kind == 'pytorch'):
        raise ConfigError(f'--jobs {jobs}: must be >= 1, and 1 with --launcher pytorch (each run takes all GPUs '
                          'of the machine)')
    extra = dict(extra_options or {})
    runs, failures = runs_of(table, out), []
    for run in runs:  # refused before any run starts: options the harness owns, folders of other settings
        check_settings(run, run_options(run, extra, teacher_checkpoint(run, runs, placeholder=True)), record=False)
    for stage in _stages(runs):
        waiting = [run for run in stage if next_step(run.work_dir) != 'done']
        threads = max(1, (os.cpu_count() or 1) // min(jobs, len(waiting) or 1)) if launcher.kind == 'none' else None

        def attempt(run: Run) -> Optional[str]:
            try:
                perform(run, table, launcher, run_options(run, extra, teacher_checkpoint(run, runs)), threads, log)
            except (RunFailed, TableError) as error:
                log(f'[reproduce] {error}')
                return str(error).splitlines()[0]
            return None

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            failures += [message for message in pool.map(attempt, stage) if message]
    return failures


def dry_run(table: Table, out: str, launcher: Launcher, extra_options: Optional[Dict[str, str]] = None) -> List[str]:
    """The commands :func:`execute` would run now, one line each (a ``#`` line for a finished run); writes nothing.
    A checkpoint that does not exist yet is written ``<final checkpoint of ROW/seedK>``."""
    check_tools()
    extra, lines, runs = dict(extra_options or {}), [], runs_of(table, out)
    for run in runs:
        step = next_step(run.work_dir)
        if step == 'done':
            lines.append(f'# {run.label}: finished ({RESULT_FILE}), skipped')
            continue
        options = run_options(run, extra, teacher_checkpoint(run, runs, placeholder=True))
        if step in ('train', 'resume'):
            lines.append(str(launcher.train(run, options, resume=step == 'resume')))
            checkpoint = f'<final checkpoint of {run.label}>'
        else:
            checkpoint = read_json(osp.join(run.work_dir, TRAINED_FILE))['checkpoint']
        predictions = osp.join(run.work_dir, 'predictions') if table.save_predictions else None
        lines.append(str(launcher.test(run, checkpoint, evaluation_options(options), predictions)))
    return lines
