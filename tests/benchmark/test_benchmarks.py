"""The benchmark tools' reports: the losses against the naive form, the distill step with the data loader's verdict,
and the teacher-precision table."""
import os
import re

import pytest
import torch
from mmengine.config import Config

from gdkd_seg.benchmark import losses as losses_benchmark
from gdkd_seg.benchmark.data_throughput import (
    PipelineSpeed,
    data_bound_report,
    native_image_size,
    time_pipeline,
    workers_needed,
)
from gdkd_seg.benchmark.losses import launch_sweep, loss_benchmark, parse_size
from gdkd_seg.losses.kernels import gpu
from gdkd_seg.utils.errors import ConfigError
from tests.support import assert_user_error, cfg_options, config_path, fast_distill_options, run_tool, run_tool_here

TOY_CONFIG = config_path('demo', 'gdkd_toy.py')


def test_workers_needed_keep_up_with_the_step_with_headroom():
    # the H200 of configs/README.md: 75 ms per image and core, 54 ms per step of 2 images: 2.8 workers, 3.5 with
    # 1.25 headroom
    assert workers_needed(2, 0.054, 1 / 0.075) == 4
    assert workers_needed(8, 0.176, 1 / 0.075, headroom=1.0) == 4  # 3.41 workers
    assert workers_needed(2, 10.0, 100.0) == 1


def test_report_says_when_the_loader_starves_the_step():
    speed = PipelineSpeed(images_per_second=1 / 0.075, samples=20, source='toy city')
    starved = data_bound_report(speed, batch_size=2, step_seconds=0.054, num_workers=2)
    assert '75.0 ms per image' in starved and '75.0 ms per batch of 2 (2 workers in parallel)' in starved
    assert '| workers that keep up | 4 per GPU process' in starved
    assert '| verdict | **data-bound**: the GPU waits for data; set num_workers >= 4 |' in starved
    fed = data_bound_report(speed, batch_size=2, step_seconds=0.054, num_workers=8)
    assert '| verdict | not data-bound |' in fed
    main_process = data_bound_report(speed, batch_size=2, step_seconds=1.0, num_workers=0)
    assert '**data-bound**' in main_process and 'in the main process between steps' in main_process


def test_toy_images_take_the_pipelines_image_size():
    assert native_image_size(Config.fromfile(config_path('gdkd', 'deeplabv3_r101_to_r18_cityscapes.py'))) == \
        (1024, 2048)
    cfg = Config.fromfile(TOY_CONFIG)
    assert native_image_size(cfg) == (128, 256)
    cfg.train_dataloader.dataset.pipeline = [dict(type='LoadImageFromFile'), dict(type='PackSegInputs')]
    with pytest.raises(ValueError, match='no Resize / RandomResize.*train_dataloader.dataset.data_root=PATH'):
        native_image_size(cfg)


def test_pipeline_is_timed_on_the_data_root_or_a_generated_toy_city(toy_data_root, mmseg_scope):
    cfg = Config.fromfile(TOY_CONFIG)
    cfg.train_dataloader.dataset.data_root = toy_data_root
    speed = time_pipeline(cfg, samples=3)
    assert speed.source.startswith(toy_data_root) and speed.samples == 3 and speed.images_per_second > 0
    cfg.train_dataloader.dataset.data_root = '/nonexistent/cityscapes'
    speed = time_pipeline(cfg, samples=2, toy_images=2)
    assert re.match(r'toy city, 2 images of 128x256 generated in [\d.]+ s \(/nonexistent/cityscapes not found\)',
                    speed.source)


def test_distill_step_with_a_bf16_teacher_and_the_data_verdict():
    result = run_tool('analysis_tools/benchmark_distill_step.py', TOY_CONFIG, '--crop', '64', '128', '--repeats', '1',
                      '--teacher-precision', 'bf16', '--channels-last', '--data-samples', '2', '--cfg-options',
                      'train_dataloader.dataset.data_root=/nonexistent/cityscapes', 'train_dataloader.num_workers=0')
    out = result.stdout
    assert 'batch 2, crop 64x128, teacher bf16 channels_last' in out
    for step in ('student', 'teacher', 'distill'):
        assert re.search(rf'\| {step} \| [\d.]+ \|', out), out
    assert 'toy city, 4 images of 128x256 generated' in out
    assert re.search(r'\| loader, num_workers=0 \| [\d.]+ ms per batch of 2, in the main process', out), out
    assert '**data-bound**' in out


def test_teacher_precision_table_on_training_data(toy_data_root, toy_teacher_ckpt):
    result = run_tool('analysis_tools/benchmark_teacher_precision.py', TOY_CONFIG, '--teacher-ckpt', toy_teacher_ckpt,
                      '--batch', '2', '--repeats', '1', *cfg_options(fast_distill_options(toy_data_root,
                                                                                          toy_teacher_ckpt)))
    out = result.stdout
    assert f'inputs: 2 training images of {toy_data_root} through the pipeline' in out
    number = r'([\d.e+-]+)'
    rows = {name: [float(value) for value in values] for name, *values in re.findall(
        rf'\| (fp32|bf16|fp16|bf16 \+ channels_last) \| {number} \| {number} \| {number} \| {number} \| {number} \|',
        out)}
    assert list(rows) == ['fp32', 'bf16', 'fp16', 'bf16 + channels_last'], out
    assert rows['fp32'][1:] == [0.0, 0.0, 0.0, 100.0]
    for name in ('bf16', 'fp16', 'bf16 + channels_last'):
        _, max_change, mean_change, loss_change, agreement = rows[name]
        assert 0 < mean_change <= max_change and 0 < loss_change < 0.01 and agreement > 90, (name, rows[name])


def _loss_table(lines):
    """The loss benchmark's table as ``{size label: {column: cell}}``."""
    header = next(line for line in lines if line.startswith('| size |')).splitlines()[0].strip('| ').split(' | ')
    rows = [line.strip('| ').split(' | ') for line in lines if line.startswith(('| seg', '| cls'))]
    return {cells[0]: dict(zip(header, cells)) for cells in rows}


def test_loss_benchmark_reports_a_row_per_size():
    lines = list(loss_benchmark([parse_size('19x2x8x16'), parse_size('50x32')], 'cpu', repeats=1, warmup=0,
                                copy_bytes=1 << 20))
    table = _loss_table(lines)
    assert list(table) == ['seg C=19, B=2, 8x16', 'cls C=50, N=32']
    for row in table.values():
        assert float(row['rel diff']) < 1e-5  # ours and the naive form compute the same function on tame logits
        # only the naive form breaks on a confident teacher
        assert [row[f'{name} finite @50'] for name in ('ours', 'ours-pytorch', 'naive')] == ['yes', 'yes', 'NO']
        launches = {name: int(row[f'{name} launches']) for name in ('ours', 'ours-pytorch', 'naive')}
        assert 0 < launches['ours'] < launches['naive'], launches  # the fused kernel replaces dozens of operators
        assert float(row['ours GB/s']) > 0 and float(row['ours % of bandwidth']) > 0
        assert row['ours host ms'] == '-'  # CPU: the host does the work, no separate host time
        assert 'naive-compiled ms' not in row  # compiling is off on CPU unless asked for
    assert any(re.match(r'- ours GB/s: .* copy bandwidth [\d.]+ GB/s = read \+ write bytes', line) for line in lines)
    with pytest.raises(ConfigError, match="--sizes: 'nonsense' is neither a preset"):
        parse_size('nonsense')
    assert_user_error(run_tool('analysis_tools/benchmark_losses.py', '--sizes', 'nonsense', check=False),
                      "--sizes: 'nonsense' is neither a preset")


def test_loss_benchmark_reports_a_failed_compile_in_its_cells(monkeypatch):
    def compile_fails(fn, **options):
        def compiled(*args):
            raise RuntimeError('no C++ compiler | found\nsecond line')
        return compiled

    monkeypatch.setattr(torch, 'compile', compile_fails)
    lines = list(loss_benchmark([parse_size('19x1x4x4')], 'cpu', repeats=1, warmup=0, compile_naive=True,
                                copy_bytes=1 << 20))
    row = _loss_table(lines)['seg C=19, B=1, 4x4']
    # one line, no '|' to break the table; the other variants measured all the same
    assert row['naive-compiled ms'] == 'failed: RuntimeError: no C++ compiler / found'
    assert row['naive-compiled peak MiB'] == row['naive-compiled finite @50'] == '-'
    assert float(row['naive ms']) > 0 and row['naive finite @50'] == 'NO'


def test_launch_sweep_sets_pixels_and_warps_and_restores_them(monkeypatch):
    seen = []

    def ours(student, teacher):
        seen.append((gpu.LAUNCH['pixels'], gpu.LAUNCH['num_warps']))
        return (student * teacher).sum()

    monkeypatch.setattr(losses_benchmark, 'ours_gdkd', ours)
    default = dict(gpu.LAUNCH)
    table = launch_sweep([(64, 2), (512, 8)], [parse_size('19x1x4x4')], 'cpu', repeats=1, warmup=0)
    assert set(seen) == {(64, 2), (512, 8)}
    assert gpu.LAUNCH == default
    assert '| size | 64 pixels, 2 warps | 512 pixels, 8 warps |' in table
    assert re.search(r'\| seg C=19, B=1, 4x4 \| [\d.]+ \| [\d.]+ \|', table), table


@pytest.mark.parametrize('args, message', [
    (['--launch-sweep', '128'], "argument --launch-sweep: '128' is not PIXELSxWARPS, e.g. 128x4"),
    (['--launch-sweep', '0x4'], "argument --launch-sweep: '0x4': pixels and warps must be >= 1"),
    (['--launch-sweep', '128x4'], 'error: --launch-sweep times the Triton kernels, which run on CUDA: add --device'),
])
def test_loss_benchmark_refuses_bad_launch_sweeps(args, message, monkeypatch):
    result = run_tool_here('analysis_tools/benchmark_losses.py', *args, monkeypatch=monkeypatch)
    # argparse's refusal: usage, then the message; nothing measured
    assert result.returncode == 2 and message in result.stderr and 'Traceback' not in result.stderr, result.stderr
    assert result.stdout == ''


def test_sass_report_shows_the_kernel_bandwidth_bound():
    """``benchmark_losses.py --sass`` compiles the GPU loss kernel for sm_90 (no GPU) and reads its cost: at most 4
    warp-instructions per logit element at C=19 and C=150, no local memory or spills up to C=8000, and the one-line
    summary at the end."""
    result = run_tool('analysis_tools/benchmark_losses.py', '--sass', env=dict(os.environ, TRITON_INTERPRET='0'),
                      timeout=600)
    rows = {int(line.split('|')[1]): [cell.strip() for cell in line.strip('|\n ').split('|')]
            for line in result.stdout.splitlines() if re.match(r'\| \d+ \|', line)}
    assert sorted(rows) == [19, 150, 1000, 8000], result.stdout
    for num_classes, cells in rows.items():
        assert cells[3:5] == ['0', '0'], cells  # local bytes, spill instructions
        assert float(cells[-1]) > 0
    assert float(rows[19][-1]) <= 4.0 and float(rows[150][-1]) <= 4.0, result.stdout
    summary = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r'sass: C=19 [\d.]+ instr/elem, C=150 [\d.]+ instr/elem, C=1000 [\d.]+ instr/elem', summary)
    assert summary.split()[2] == rows[19][-1]
