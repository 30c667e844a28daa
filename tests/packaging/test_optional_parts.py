"""Optional parts are optional: with only the required dependencies (no mmpretrain, no triton) the package imports,
every loss and SegDistiller work, every segmentation config builds and the tools run; ClsDistiller and the
classification configs say in one line which extra installs what they need."""
import glob
import os
import os.path as osp
import subprocess
import sys
import sysconfig

import pytest

from tests.support import REPO_ROOT, cfg_options, config_path, fast_distill_options, tool_path

OPTIONAL = ('mmpretrain', 'triton')
CLS_EXTRA = "pip install 'gdkd_seg[cls]'"


@pytest.fixture(scope='module')
def required_only(tmp_path_factory) -> str:
    """A site-packages folder of links to this environment's packages but the optional ones: the environment a user
    gets from ``pip install gdkd_seg`` without extras."""
    site = tmp_path_factory.mktemp('required_only')
    purelib = sysconfig.get_paths()['purelib']
    for name in os.listdir(purelib):
        if not name.lower().startswith(OPTIONAL):
            os.symlink(osp.join(purelib, name), site / name)
    return str(site)


def run_without_extras(site: str, args, **kwargs) -> subprocess.CompletedProcess:
    """``python args`` with the standard library and ``site`` only (``-S``: the environment's own site-packages,
    which holds the optional packages, is never added)."""
    bootstrap = f'import site, sys; site.addsitedir({site!r}); sys.argv = sys.argv[1:]; ' \
                'import runpy; runpy.run_path(sys.argv[0], run_name="__main__")'
    return subprocess.run([sys.executable, '-S', '-c', bootstrap, *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, **kwargs)


IMPORTS = """
import importlib.util, sys
import torch
import gdkd_seg
from gdkd_seg.losses import CWDLoss, DISTLoss, DKDLoss, GDKD3Loss, GDKDLoss, KDLoss
from gdkd_seg.losses.kernels import gpu
from gdkd_seg.models import SegDistiller
assert importlib.util.find_spec('mmpretrain') is None and importlib.util.find_spec('triton') is None
assert not gpu.available()
student, teacher = torch.randn(2, 19, 4, 4, requires_grad=True), torch.randn(2, 19, 4, 4)
gt = torch.randint(0, 19, (2, 4, 4))
for loss in (GDKDLoss(), GDKD3Loss(), DKDLoss(), KDLoss(), CWDLoss(), DISTLoss()):
    loss(student, teacher, gt).backward()
    assert torch.isfinite(student.grad).all(), type(loss).__name__
try:
    from gdkd_seg.models import ClsDistiller
except ImportError as error:
    print('refused:', error)
print('ok')
"""


def test_the_package_and_every_loss_work_without_the_extras(required_only, tmp_path):
    script = tmp_path / 'imports.py'
    script.write_text(IMPORTS)
    result = run_without_extras(required_only, [str(script)])
    assert result.returncode == 0, result.stderr[-4000:]
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == 'ok'
    assert lines[-2] == f'refused: ClsDistiller needs mmpretrain, which is not installed: {CLS_EXTRA}'


BUILD_SEGMENTATION_CONFIGS = """
import sys
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS
from gdkd_seg.engine.distributed import syncbn_to_bn
from gdkd_seg.engine.runner_setup import load_config
built = 0
for path in sys.argv[1:]:
    cfg = load_config(path)
    model = cfg.model
    if model.get('type') == 'SegDistiller':  # as tools/test.py builds it: the student alone, nothing downloaded
        model.teacher = model.teacher_ckpt = None
    syncbn_to_bn(model)
    with DefaultScope.overwrite_default_scope('mmseg'):
        MODELS.build(model)
    built += 1
print('built', built)
"""


def test_every_segmentation_config_builds_without_the_extras(required_only, tmp_path):
    configs = sorted(path for path in glob.glob(config_path('**', '*.py'), recursive=True)
                     if '_base_' not in path and f'{os.sep}cls{os.sep}' not in path)
    script = tmp_path / 'build.py'
    script.write_text(BUILD_SEGMENTATION_CONFIGS)
    result = run_without_extras(required_only, [str(script), *configs])
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.strip().splitlines()[-1] == f'built {len(configs)}'


def test_the_tools_train_without_the_extras_and_name_the_extra_for_classification(required_only, toy_data_root,
                                                                                   toy_teacher_ckpt, tmp_path):
    options = fast_distill_options(toy_data_root, toy_teacher_ckpt, **{'train_cfg.max_iters': 1})
    trained = run_without_extras(required_only, [tool_path('train.py'), config_path('demo', 'gdkd_toy.py'),
                                                 '--work-dir', str(tmp_path / 'run'), *cfg_options(options)])
    assert trained.returncode == 0, trained.stderr[-4000:]
    assert osp.isfile(tmp_path / 'run' / 'iter_1.pth')

    for config in glob.glob(config_path('cls', '*.py')):
        refused = run_without_extras(required_only, [tool_path('train.py'), config, '--work-dir',
                                                     str(tmp_path / 'cls')])
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 2 and 'Traceback' not in refused.stderr, refused.stderr[-3000:]
        assert lines[-1] == f'error: {config} (a classification config) needs mmpretrain, which is not ' \
                            f'installed: {CLS_EXTRA}'
