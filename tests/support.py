"""Helpers the tests share: paths, config options for the toy city, a toy distillation Runner, checkpoints of
random teachers, and the command-line tools run as a user runs them."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys
import uuid

import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmseg.registry import MODELS

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


def run_tool(script: str, *args: str, check: bool = True, env: dict = None) -> subprocess.CompletedProcess:
    """Run ``tools/<script>`` in a subprocess from the repo root, as a user would (``env``: its environment,
    default this process's); returns the CompletedProcess."""
    result = subprocess.run([sys.executable, tool_path(script), *args], cwd=REPO_ROOT, capture_output=True,
                            text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f'{script} {" ".join(args)} failed ({result.returncode}):\n'
                             f'{result.stdout[-4000:]}\n{result.stderr[-6000:]}')
    return result


def load_tool(script: str):
    """Import ``tools/<script>`` as a module (to call its functions in-process)."""
    spec = importlib.util.spec_from_file_location(f'gdkd_tool_{osp.basename(script)[:-3]}', tool_path(script))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
