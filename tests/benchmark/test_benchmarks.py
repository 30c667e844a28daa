"""The benchmark tools' reports: the losses against the naive form, the distill step with the data loader's verdict,
and the teacher-precision table."""
import re

import pytest
from mmengine.config import Config

from gdkd_seg.benchmark.data_throughput import (
    PipelineSpeed,
    data_bound_report,
    native_image_size,
    time_pipeline,
    workers_needed,
)
from gdkd_seg.benchmark.losses import loss_benchmark, parse_size
from gdkd_seg.utils.errors import ConfigError
from tests.support import assert_user_error, cfg_options, config_path, fast_distill_options, run_tool

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


def test_loss_benchmark_reports_a_row_per_size():
    lines = list(loss_benchmark([parse_size('19x2x8x16'), parse_size('50x32')], 'cpu', repeats=1, warmup=0))
    rows = [line for line in lines if line.startswith('| seg') or line.startswith('| cls')]
    assert [row.split(' | ')[0] for row in rows] == ['| seg C=19, B=2, 8x16', '| cls C=50, N=32']
    for row in rows:
        cells = row.strip('| ').split(' | ')
        rel_diff, finite = float(cells[10]), cells[11:]
        assert rel_diff < 1e-5  # ours and the naive form compute the same function on tame logits
        assert finite == ['yes', 'yes', 'NO']  # only the naive form breaks on a confident teacher
    with pytest.raises(ConfigError, match="--sizes: 'nonsense' is neither a preset"):
        parse_size('nonsense')
    assert_user_error(run_tool('analysis_tools/benchmark_losses.py', '--sizes', 'nonsense', check=False),
                      "--sizes: 'nonsense' is neither a preset")
