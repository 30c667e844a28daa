"""Shared fixtures: a tiny generated Cityscapes-format dataset and tiny teacher checkpoints, all in tmp dirs. The
helpers the tests share are in ``tests/support.py``."""
import os

# The losses' Triton kernel is tested on CPU tensors through Triton's interpreter, which must be chosen before
# triton is first imported. TRITON_INTERPRET=0 (on a GPU machine) tests the compiled kernel on CUDA tensors
# instead (tests/losses/test_kernels.py).
os.environ.setdefault('TRITON_INTERPRET', '1')

import pytest  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402

from gdkd_seg.datasets import make_toy_cityscapes  # noqa: E402  (registers the toolkit before any test imports)
from tests.support import TOY_SIZE, config_path, write_teacher_checkpoint  # noqa: E402


@pytest.fixture
def mmseg_scope():
    """Build MMSeg modules (data preprocessors, heads) by their names, whatever ran before."""
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


@pytest.fixture(scope='session')
def toy_teacher_ckpt(tmp_path_factory) -> str:
    """A checkpoint for the demo teacher config (configs/demo/teacher_toy.py)."""
    cfg = Config.fromfile(config_path('demo', 'teacher_toy.py'))
    return write_teacher_checkpoint(cfg.model, str(tmp_path_factory.mktemp('teacher') / 'teacher.pth'))
