"""Shared fixtures: a tiny generated Cityscapes-format dataset and tiny teacher checkpoints, all in tmp dirs."""
import os
import os.path as osp

# The losses' Triton kernel is tested on CPU tensors through Triton's interpreter, which must be chosen before
# triton is first imported. TRITON_INTERPRET=0 (on a GPU machine) tests the compiled kernel on CUDA tensors
# instead (tests/test_kernels.py).
os.environ.setdefault('TRITON_INTERPRET', '1')

import pytest  # noqa: E402
import torch  # noqa: E402

import gdkd_seg  # noqa: F401  (registers the toolkit before any MMSeg import)
from gdkd_seg.datasets import make_toy_cityscapes
from mmengine.config import Config

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOY_SIZE = (64, 128)


@pytest.fixture
def mmseg_scope():
    """Build MMSeg modules (data preprocessors, heads) by their names, whatever ran before."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


@pytest.fixture(scope='session')
def toy_data_root(tmp_path_factory) -> str:
    """A 6-train / 2-val toy city at 64x128."""
    root = str(tmp_path_factory.mktemp('toy_cityscapes'))
    make_toy_cityscapes(root, num_train=6, num_val=2, size=TOY_SIZE, seed=0, progress=False)
    return root


@pytest.fixture
def local_only_downloads(tmp_path, monkeypatch):
    """Short download timeout, a private torch hub cache, and no proxy between us and 127.0.0.1."""
    monkeypatch.setenv('GDKD_DOWNLOAD_TIMEOUT', '1')
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    for name in ('http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('no_proxy', '127.0.0.1,localhost')


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


def toy_runner(data_root: str, teacher_ckpt: str, work_dir: str, max_iters: int, **changes):
    """An in-process Runner on the demo distillation config (its default_hooks, hence NonFiniteLossHook,
    included), at the 64x128 test crop, saving a checkpoint every iteration; ``changes``: more config options."""
    import uuid
    from gdkd_seg.distributed import syncbn_to_bn
    from mmengine.runner import Runner
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
    """Build a teacher from ``model_cfg`` with random weights and save an MMSeg-style checkpoint."""
    from mmseg.registry import MODELS
    torch.manual_seed(seed)
    model_cfg = dict(model_cfg)
    model_cfg.pop('pretrained', None)
    teacher = MODELS.build(model_cfg)
    os.makedirs(osp.dirname(path), exist_ok=True)
    torch.save({'state_dict': teacher.state_dict(), 'meta': {'note': 'test teacher'}}, path)
    return path


@pytest.fixture(scope='session')
def toy_teacher_ckpt(tmp_path_factory) -> str:
    """A checkpoint for the demo teacher config (configs/demo/teacher_toy.py)."""
    cfg = Config.fromfile(config_path('demo', 'teacher_toy.py'))
    return write_teacher_checkpoint(cfg.model, str(tmp_path_factory.mktemp('teacher') / 'teacher.pth'))


def run_tool(script: str, *args: str, check: bool = True, env: dict = None):
    """Run ``tools/<script>`` in a subprocess from the repo root, as a user would (``env``: its environment,
    default this process's); returns the CompletedProcess."""
    import subprocess
    import sys
    result = subprocess.run([sys.executable, osp.join(REPO_ROOT, 'tools', script), *args], cwd=REPO_ROOT,
                            capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f'{script} {" ".join(args)} failed ({result.returncode}):\n'
                             f'{result.stdout[-4000:]}\n{result.stderr[-6000:]}')
    return result


def load_tool(name: str):
    """Import ``tools/<name>.py`` as a module (to call its functions in-process)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f'gdkd_tool_{name}', osp.join(REPO_ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cfg_options(options: dict) -> list:
    """``--cfg-options`` arguments for a dict of dotted keys."""
    return ['--cfg-options'] + [f'{key}={value}' for key, value in options.items()]
