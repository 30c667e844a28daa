"""Helpers the tests share: paths, config options for the toy city, a toy distillation Runner, checkpoints of
random teachers, local HTTP servers (one that serves files, one that never answers), a guard against hangs, and the
command-line tools run as a user runs them."""
import contextlib
import functools
import http.server
import importlib.util
import io
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import threading
import uuid
from typing import Iterator

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmseg.registry import MODELS

from gdkd_seg.engine import cli
from gdkd_seg.engine.distributed import syncbn_to_bn

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOY_SIZE = (64, 128)


def config_path(*parts: str) -> str:
    return osp.join(REPO_ROOT, 'configs', *parts)


def tiny_data_options(data_root: str) -> dict:
    """``--cfg-options`` that point a toy config at ``data_root`` with small batches and no worker processes."""
    options = {}
    for split, batch_size in (('train_dataloader', 2), ('val_dataloader', 1), ('test_dataloader', 1)):
        options.update({f'{split}.dataset.data_root': data_root, f'{split}.batch_size': batch_size,
                        f'{split}.num_workers': 0, f'{split}.persistent_workers': False})
    return options


def fast_distill_options(data_root: str, teacher_ckpt: str, **extra) -> dict:
    """``--cfg-options`` for the demo distillation on the test toy city at a 64x128 crop (the demo pipeline's resize
    and crop, by index), plus ``extra``."""
    return dict(tiny_data_options(data_root), **{
        'model.teacher_ckpt': teacher_ckpt,
        'train_dataloader.dataset.pipeline.2.scale': (128, 64),
        'train_dataloader.dataset.pipeline.3.crop_size': (64, 128),
        'data_preprocessor.size': (64, 128), 'model.student.data_preprocessor.size': (64, 128),
        'train_cfg.val_interval': 1000, 'default_hooks.logger.interval': 1}, **extra)


def toy_runner(data_root: str, teacher_ckpt: str, work_dir: str, max_iters: int, **changes) -> Runner:
    """An in-process Runner on the demo distillation config (its default_hooks, hence NonFiniteLossHook,
    included), at the 64x128 test crop, saving a checkpoint every iteration; ``changes``: more config options."""
    cfg = Config.fromfile(config_path('demo', 'gdkd_toy.py'))
    cfg.merge_from_dict(fast_distill_options(data_root, teacher_ckpt))
    cfg.merge_from_dict(dict({'work_dir': work_dir, 'experiment_name': f'toy_{uuid.uuid4().hex}',
                              'train_cfg.max_iters': max_iters, 'default_hooks.checkpoint.interval': 1}, **changes))
    syncbn_to_bn(cfg.model)
    return Runner.from_cfg(cfg)


def assert_student_trained_teacher_frozen(distiller, student_before: dict, teacher_before: dict,
                                          head: str) -> None:
    """After training steps: the student's backbone and ``head`` weights changed; the teacher's did not, it has no
    gradients, does not train, and stays in eval mode."""
    changed = [key for key, value in distiller.student.state_dict().items()
               if value.dtype.is_floating_point and not torch.equal(value, student_before[key])]
    assert any('backbone' in key for key in changed) and any(head in key for key in changed)
    for key, value in distiller.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), f'teacher {key} changed'
    assert all(param.grad is None and not param.requires_grad for param in distiller.teacher.parameters())
    assert not distiller.teacher.training


def write_teacher_checkpoint(model_cfg: dict, path: str, seed: int = 0) -> str:
    """Build a segmentor from ``model_cfg`` with random weights and save an MMSeg-style checkpoint."""
    torch.manual_seed(seed)
    model_cfg = dict(model_cfg)
    model_cfg.pop('pretrained', None)
    teacher = MODELS.build(model_cfg)
    os.makedirs(osp.dirname(path), exist_ok=True)
    torch.save({'state_dict': teacher.state_dict(), 'meta': {'note': 'test teacher'}}, path)
    return path


def tool_path(script: str) -> str:
    """``tools/<script>``, e.g. ``train.py`` or ``analysis_tools/analyze_teacher.py``."""
    return osp.join(REPO_ROOT, 'tools', script)


def run_tool(script: str, *args: str, check: bool = True, env: dict = None,
             timeout: float = None) -> subprocess.CompletedProcess:
    """Run ``tools/<script>`` in a subprocess from the repo root, as a user would (``env``: its environment,
    default this process's; ``timeout``: seconds before it is killed and ``subprocess.TimeoutExpired`` raised);
    returns the CompletedProcess."""
    result = subprocess.run([sys.executable, tool_path(script), *args], cwd=REPO_ROOT, capture_output=True,
                            text=True, errors='backslashreplace', env=env, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f'{script} {" ".join(args)} failed ({result.returncode}):\n'
                             f'{result.stdout[-4000:]}\n{result.stderr[-6000:]}')
    return result


def run_tool_here(script: str, *args: str, monkeypatch) -> subprocess.CompletedProcess:
    """:func:`run_tool` in this process (no interpreter start-up, the costly part of a tool's run in a test): the
    tool's ``main`` under :func:`gdkd_seg.engine.cli.run_tool`, as ``python tools/<script>`` runs it, with its exit
    status, stdout and stderr.

    The output goes to buffers of its own, left open: a logger the tool creates keeps writing somewhere valid after
    the call (pytest's ``capsys`` streams are closed after the test, and a later log line through that logger would
    fail). The default scope the tool's Runner sets is given back afterwards."""
    monkeypatch.setattr(sys, 'argv', [tool_path(script), *args])
    stdout, stderr = io.StringIO(), io.StringIO()
    with DefaultScope.overwrite_default_scope('mmseg'), contextlib.redirect_stdout(stdout), \
            contextlib.redirect_stderr(stderr):
        try:
            cli.run_tool(load_tool(script).main)
            status = 0
        except SystemExit as exit:
            status = exit.code if isinstance(exit.code, int) else 1
    return subprocess.CompletedProcess(sys.argv, status, stdout.getvalue(), stderr.getvalue())


def load_tool(script: str):
    """Import ``tools/<script>`` as a module (to call its functions in-process)."""
    spec = importlib.util.spec_from_file_location(f'gdkd_tool_{osp.basename(script)[:-3]}', tool_path(script))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class serving:
    """``http://127.0.0.1:PORT`` serving the files of ``folder`` while the block lasts."""

    def __init__(self, folder: str) -> None:
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=folder)
        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f'http://127.0.0.1:{self.server.server_address[1]}'

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.thread.join()
        self.server.server_close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of the call)."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """``http://127.0.0.1:PORT``: a server that accepts connections and never answers (for as long as the block
    lasts, at most 60 s: a client without a timeout then gets EOF and fails differently, instead of hanging)."""
    server = socket.socket()
    server.bind(('127.0.0.1', 0))
    server.listen(8)
    server.settimeout(0.1)  # accept() wakes up to see the end of the block (closing the socket does not wake it)
    release = threading.Event()
    connections = []

    def accept_and_stay_silent():
        while not release.is_set():
            try:
                connections.append(server.accept()[0])
            except TimeoutError:
                continue
            except OSError:  # closed
                return

    thread = threading.Thread(target=accept_and_stay_silent, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.getsockname()[1]}'
    finally:
        release.set()
        thread.join()
        server.close()
        for connection in connections:
            connection.close()


@contextlib.contextmanager
def fails_within(seconds: int) -> Iterator[None]:
    """Raise ``TimeoutError`` in the block after ``seconds`` (a test of something that must not hang)."""
    def interrupt(signum, frame):
        raise TimeoutError(f'still running after {seconds} s: it hangs')
    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def cfg_options(options: dict) -> list:
    """``--cfg-options`` arguments for a dict of dotted keys."""
    return ['--cfg-options'] + [f'{key}={value}' for key, value in options.items()]


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """A tool refused a user's mistake as the tools do: exit status 2, no traceback, and stderr ending with
    ``error: <message>`` (the message may span lines) holding each of ``fragments``; returns the message."""
    stderr = '\n' + result.stderr
    start = stderr.rfind('\nerror: ')
    assert result.returncode == 2 and start >= 0, \
        f'exit {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}'
    assert 'Traceback' not in result.stderr, result.stderr[-4000:]
    message = stderr[start + len('\nerror: '):].strip()
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message
