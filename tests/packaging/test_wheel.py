"""A wheel built from the repository holds the kernels' sources, installs, and runs its kernels from where it was
installed."""
import os
import os.path as osp
import shutil
import subprocess
import sys
import sysconfig
import zipfile

from tests.support import REPO_ROOT

KERNEL_SOURCES = ('gdkd_seg/losses/kernels/grouped_kl.c', 'gdkd_seg/losses/kernels/grouped_kl_triton.py')

RUN_INSTALLED = """
import os, sys, torch
import gdkd_seg
from gdkd_seg.losses import gdkd_loss
from gdkd_seg.losses.kernels import cpu, gpu
assert gdkd_seg.__file__.startswith(sys.argv[1]), gdkd_seg.__file__
assert str(cpu.SOURCE).startswith(sys.argv[1]) and cpu.supports(torch.zeros(1, 2))
assert gpu.kernels().grouped_kl_kernel is not None
student = torch.randn(2, 19, 4, 4, requires_grad=True)
gdkd_loss(student, torch.randn(2, 19, 4, 4))[0].backward()
print('ran', os.listdir(os.environ['GDKD_KERNEL_CACHE']))
"""


def test_a_wheel_holds_the_kernel_sources_and_installs(tmp_path):
    source = tmp_path / 'source'
    source.mkdir()
    for name in ('setup.py', 'README.md'):
        shutil.copy(osp.join(REPO_ROOT, name), source / name)
    shutil.copytree(osp.join(REPO_ROOT, 'gdkd_seg'), source / 'gdkd_seg',
                    ignore=shutil.ignore_patterns('__pycache__'))
    built = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '--no-index',
                            '-w', str(tmp_path / 'dist'), str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel, = (tmp_path / 'dist').glob('gdkd_seg-*.whl')
    with zipfile.ZipFile(wheel) as archive:
        assert set(KERNEL_SOURCES) <= set(archive.namelist())

    target = tmp_path / 'installed'
    installed = subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-index', '--target',
                                str(target), str(wheel)], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr[-3000:]
    # this environment's packages, without its editable gdkd_seg, behind the installed wheel
    site = tmp_path / 'site'
    site.mkdir()
    purelib = sysconfig.get_paths()['purelib']
    for name in os.listdir(purelib):
        if 'gdkd_seg' not in name:
            os.symlink(osp.join(purelib, name), site / name)
    bootstrap = (f'import site, sys; sys.path.insert(0, {str(target)!r}); site.addsitedir({str(site)!r}); '
                 f'sys.argv = sys.argv[1:]; exec(sys.argv[0])')
    result = subprocess.run([sys.executable, '-S', '-c', bootstrap, RUN_INSTALLED, str(target)], cwd=str(tmp_path),
                            capture_output=True, text=True,
                            env=dict(os.environ, GDKD_KERNEL_CACHE=str(tmp_path / 'cache')))
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.strip().splitlines()[-1].startswith("ran ['grouped_kl-")
