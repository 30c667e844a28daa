"""Multi-process training and evaluation, as tools/dist_train.sh and tools/dist_test.sh run them, on 2 CPU processes
(torchrun, gloo, 127.0.0.1 only); the GPU/CPU choices of tools/train.py; tools/slurm_train.sh's srun call."""
import glob
import importlib.util
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from gdkd_seg.checkpoint.loading import load_checkpoint_file
from tests.support import (
    REPO_ROOT,
    cfg_options,
    config_path,
    fast_distill_options,
    free_port,
    run_tool,
    tiny_data_options,
)

TOY_CONFIG = config_path('demo', 'gdkd_toy.py')
CPU_CONVERSION = "distributed run without CUDA (torch's SyncBatchNorm trains on GPUs only): converted"


def torchrun(script: str, *args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    """``tools/<script> ... --launcher pytorch`` under torchrun on this machine; fails the test if it fails."""
    command = [sys.executable, '-m', 'torch.distributed.run', '--nnodes', '1', '--nproc_per_node', str(nproc),
               '--master_addr', '127.0.0.1', '--master_port', str(free_port()),
               osp.join(REPO_ROOT, 'tools', script), *args, '--launcher', 'pytorch']
    env = dict(os.environ, GLOO_SOCKET_IFNAME='lo', OMP_NUM_THREADS='1')
    # the timeout only turns a hung process group into a failure; a healthy run takes well under a minute
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise AssertionError(f'torchrun {script} failed ({result.returncode}):\n{result.stdout[-4000:]}\n'
                             f'{result.stderr[-6000:]}')
    return result


@pytest.fixture(scope='module')
def distributed_run(toy_data_root, toy_teacher_ckpt, tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('dist') / 'train')
    result = torchrun('train.py', TOY_CONFIG, '--work-dir', work_dir,
                      *cfg_options(fast_distill_options(toy_data_root, toy_teacher_ckpt, **{
                          'train_cfg.max_iters': 2, 'default_hooks.checkpoint.interval': 2})))
    return work_dir, result.stdout + result.stderr


def test_two_process_training_finishes_with_one_checkpoint_and_rank0_logs(distributed_run):
    work_dir, output = distributed_run
    assert 'Distributed training: True' in output and 'GPU number: 2' in output  # MMEngine's world size
    for iteration in (1, 2):  # both ranks train, only rank 0 logs
        assert output.count(f'Iter(train) [{iteration}/2]') == 1
    assert output.count('Saving checkpoint at 2 iterations') == 1
    assert sorted(osp.basename(path) for path in glob.glob(osp.join(work_dir, '*.pth'))) == ['iter_2.pth']
    assert len(glob.glob(osp.join(work_dir, '*', '*.log'))) == 1  # no per-rank log files
    # torch's SyncBatchNorm refuses CPU tensors in training: converted, said once, for this reason
    assert output.count(CPU_CONVERSION) == 1 and 'single-process run' not in output
    assert output.count('distributed run without CUDA: backend nccl -> gloo') == 1
    checkpoint = load_checkpoint_file(osp.join(work_dir, 'iter_2.pth'))
    assert checkpoint['meta']['iter'] == 2
    assert checkpoint['rng_state']['world_size'] == 2  # every rank's random state, for an exact resume


def metrics(output: str) -> tuple:
    """The summary line's metrics and the per-class table of MMSeg's IoUMetric, as printed."""
    summary = re.findall(r'Iter\(test\) \[\d+/\d+\]\s+(aAcc: \S+\s+mIoU: \S+\s+mAcc: \S+)', output)
    table = [line for line in output.splitlines() if line.startswith('|')]
    assert len(summary) == 1 and len(table) == 1 + 19, output[-3000:]  # header row + one row per class
    return summary[0], table


def test_two_process_evaluation_equals_single_process(distributed_run, toy_data_root, tmp_path):
    work_dir, _ = distributed_run
    options = cfg_options(tiny_data_options(toy_data_root))
    checkpoint = osp.join(work_dir, 'iter_2.pth')
    both = torchrun('test.py', TOY_CONFIG, checkpoint, '--work-dir', str(tmp_path / 'dist'), *options)
    single = run_tool('test.py', TOY_CONFIG, checkpoint, '--work-dir', str(tmp_path / 'single'), *options)
    dist_summary, dist_table = metrics(both.stdout + both.stderr)
    single_summary, single_table = metrics(single.stdout + single.stderr)
    assert float(re.search(r'mIoU: (\S+)', single_summary).group(1)) > 0
    assert dist_summary == single_summary
    assert dist_table == single_table


# --- what tools/train.py decides for distributed runs, on GPUs and on CPUs ----------------------------------------

def load_train_tool():
    spec = importlib.util.spec_from_file_location('gdkd_tool_train', osp.join(REPO_ROOT, 'tools', 'train.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def distributed_config(data_root: str, monkeypatch, launcher: str = 'pytorch'):
    train = load_train_tool()
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.setattr(sys, 'argv', ['train.py', TOY_CONFIG, '--launcher', launcher, '--skip-data-check',
                                      *cfg_options(tiny_data_options(data_root))])
    return train.build_config(train.parse_args())


def test_gpu_distributed_run_keeps_syncbn_and_nccl(toy_data_root, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    cfg = distributed_config(toy_data_root, monkeypatch)
    assert cfg.model.student.backbone.norm_cfg.type == 'SyncBN'
    assert cfg.model.student.decode_head.norm_cfg.type == 'SyncBN'
    assert cfg.env_cfg.dist_cfg.backend == 'nccl' and cfg.get('model_wrapper_cfg') is None


def test_cpu_distributed_run_uses_gloo_bn_and_no_device_ids(toy_data_root, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = distributed_config(toy_data_root, monkeypatch)
    assert 'SyncBN' not in str(cfg.model.student)
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel' and cfg.model_wrapper_cfg.device_ids is None


def test_slurm_launcher_without_gpus_says_what_to_use(toy_data_root, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(RuntimeError, match=r'--launcher slurm needs CUDA GPUs.*torchrun with --launcher pytorch'):
        distributed_config(toy_data_root, monkeypatch, launcher='slurm')


def test_slurm_train_sh_calls_srun_like_mmseg(tmp_path):
    """A stand-in ``srun`` on PATH records what tools/slurm_train.sh asks Slurm for."""
    fake = tmp_path / 'bin' / 'srun'
    fake.parent.mkdir()
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "$SRUN_RECORD"\n')
    fake.chmod(0o755)
    record = tmp_path / 'srun_args.txt'
    env = dict(os.environ, PATH=f'{fake.parent}:{os.environ["PATH"]}', SRUN_RECORD=str(record), GPUS='16',
               GPUS_PER_NODE='8', SRUN_ARGS='--quotatype=auto --time=1:00:00')
    result = subprocess.run(['bash', osp.join(REPO_ROOT, 'tools', 'slurm_train.sh'), 'gpu', 'gdkd', TOY_CONFIG,
                             '--work-dir', 'work_dirs/x y', '--amp'], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert record.read_text().splitlines() == [
        '-p', 'gpu', '--job-name=gdkd', '--gres=gpu:8', '--ntasks=16', '--ntasks-per-node=8', '--cpus-per-task=5',
        '--kill-on-bad-exit=1', '--quotatype=auto', '--time=1:00:00', 'python', '-u',
        osp.join(REPO_ROOT, 'tools', 'train.py'), TOY_CONFIG, '--launcher=slurm', '--work-dir', 'work_dirs/x y',
        '--amp']
