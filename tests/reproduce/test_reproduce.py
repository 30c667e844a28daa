"""The reproduction harness (gdkd_seg/reproduce, tools/reproduce/run_table.py): table files, what each run needs, the
commands of each launcher, the summary's numbers. Real trainings run in tests/reproduce/test_demo.py; here only one
tool start
that fails."""
import argparse
import csv
import glob
import json
import math
import os
import os.path as osp
import re
import shlex

import cv2
import pytest
import yaml
from mmengine.config import Config, DictAction
from mmengine.registry import MODELS

from gdkd_seg.losses import AUTHORS_MASS_CLAMP
from gdkd_seg.reproduce import (
    Launcher,
    RunFailed,
    TableError,
    dry_run,
    execute,
    load_table,
    next_step,
    runs_of,
    summarise,
    write_report,
)
from gdkd_seg.reproduce.report import paired_difference
from gdkd_seg.reproduce.runs import check_settings, parse_cfg_options, read_test_metrics, run_options
from gdkd_seg.reproduce.table import option_value
from tests.support import REPO_ROOT, assert_user_error, config_path, run_tool_here

DEMO = config_path('demo')
SHIPPED_TABLES = sorted(glob.glob(config_path('reproduce', '*.yaml')) + glob.glob(config_path('demo', '*.yaml')))


def write_table(tmp_path, text: str) -> str:
    """A table file in ``tmp_path`` whose configs are those of configs/demo (a YAML mapping ``text`` gets the
    config_root; other YAML is written as it is)."""
    path = tmp_path / 'table.yaml'
    path.write_text(text if text.startswith(('-', '!')) else f'config_root: {DEMO}\n' + text)
    return str(path)


TWO_ROWS = """
seeds: [0, 1, 2]
cfg_options: {train_cfg.max_iters: 4, train_dataloader.batch_size: 2}
rows:
  - {name: plain, config: plain_toy.py, student: S, method: none, baseline: true}
  - name: gdkd
    config: gdkd_toy.py
    student: S
    method: GDKD
    seeds: [0, 1]
    cfg_options: {train_cfg.max_iters: 8, model.distill_losses.loss_gdkd.k: 4}
"""


@pytest.mark.parametrize('path', SHIPPED_TABLES, ids=osp.basename)
def test_every_shipped_table_loads_and_its_configs_exist(path):
    table = load_table(path)
    assert all(osp.isfile(row.config) for row in table.rows)
    assert all(len(row.seeds) == (1 if row.name == 'teacher' else 3) for row in table.rows)


def test_exactness_table_differs_only_in_the_clamp():
    """Each clamped row is its exact row's config with the authors' clamp on its loss, compared with it."""
    table = load_table(config_path('demo', 'exactness.yaml'))
    for exact, clamped in (('gdkd', 'gdkd_clamped'), ('dkd', 'dkd_clamped')):
        exact_row, clamped_row = table.row(exact), table.row(clamped)
        assert clamped_row.config == exact_row.config and clamped_row.compare_to == (exact,)
        assert exact_row.cfg_options == {}
        cfg = Config.fromfile(clamped_row.config)
        cfg.merge_from_dict({key: DictAction._parse_iterable(value) for key, value in clamped_row.cfg_options.items()})
        losses = [MODELS.build(loss) for loss in cfg.model.distill_losses.values()]
        assert [loss.options['mass_clamp'] for loss in losses] == [AUTHORS_MASS_CLAMP]


def test_cityscapes_table_is_the_papers():
    with open(config_path('reproduce', 'cityscapes.yaml')) as file:
        table = yaml.safe_load(file)
    assert table['seeds'] == [0, 1, 2] and table['metric'] == 'mIoU' and len(table['rows']) == 21
    methods = ['no distillation', 'KD', 'DKD', 'DIST', 'CWD', 'GDKD', 'GDKD + DIST']
    students = {'DeepLabV3-R18': 'deeplabv3_r101_to_r18', 'PSPNet-R18': 'deeplabv3_r101_to_pspnet_r18',
                'DeepLabV3-MobileNetV2': 'deeplabv3_r101_to_mobilenetv2'}
    cells = {(row['student'], row['method']): row for row in table['rows']}
    assert set(cells) == {(student, method) for student in students for method in methods}
    for student, pair in students.items():
        assert [cells[student, method]['config'] for method in methods[1:]] == [
            f'baselines/{pair}_kd_cityscapes.py', f'baselines/{pair}_dkd_cityscapes.py',
            f'baselines/{pair}_dist_cityscapes.py', f'baselines/{pair}_cwd_cityscapes.py',
            f'gdkd/{pair}_cityscapes.py', f'gdkd/{pair}_gdkd_dist_cityscapes.py']
        baselines = [row for row in table['rows'] if row['student'] == student and row.get('baseline')]
        assert [row['method'] for row in baselines] == ['no distillation']
        assert baselines[0]['config'].endswith('_cityscapes_no_distill.py')
        assert cells[student, 'GDKD']['compare_to'] == [f'{cells[student, method]["name"]}' for method in ('KD', 'DKD')]


def test_table_rows_take_the_table_defaults_and_their_own(tmp_path):
    table = load_table(write_table(tmp_path, TWO_ROWS))
    plain, gdkd = table.rows
    assert plain.config == osp.join(DEMO, 'plain_toy.py') and plain.seeds == (0, 1, 2) and plain.baseline
    assert gdkd.seeds == (0, 1) and not gdkd.baseline and gdkd.teacher_from is None
    # the row's options win over the table's
    assert gdkd.cfg_options == {'train_cfg.max_iters': '8', 'train_dataloader.batch_size': '2',
                                'model.distill_losses.loss_gdkd.k': '4'}
    assert plain.cfg_options == {'train_cfg.max_iters': '4', 'train_dataloader.batch_size': '2'}
    assert table.baseline_of(gdkd) is plain and table.metric == 'mIoU' and table.title == 'table'
    # --seeds replaces the table's seeds, not a row's own
    assert [row.seeds for row in load_table(table.path, seeds=[5, 6]).rows] == [(5, 6), (0, 1)]


def test_option_values_reach_the_config_as_written():
    values = {'a': 1, 'b': 0.25, 'c': True, 'd': None, 'e': 'work_dirs/x.pth', 'f': [1, 2], 'g': ['x', False],
              'h': (64, 128)}
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parsed = parser.parse_args(['--cfg-options'] + [f'{key}={option_value(value, key)}'
                                                    for key, value in values.items()]).cfg_options
    assert parsed == values


BAD_TABLES = [
    ('seeds: [0]\nrows:\n  - {name: r, config: plain_toy.py, student: S, method: m, compare_to: q}',
     "compare_to: 'q' must name another row"),
    ('seeds: [0]\nrows:\n  - {name: r, config: plain_toy.py, student: S, method: m, compare_to: r}',
     "compare_to: 'r' must name another row"),
    ('seeds: [0]\nrows:\n  - {name: r, config: plain_toy.py, student: S, method: m}\n'
     '  - {name: q, config: kd_toy.py, student: U, method: m, compare_to: r}', 'must have the same student'),
    ('seeds: [0]\nrows:\n  - {name: r, config: plain_toy.py, student: S, method: m, seeds: [1]}\n'
     '  - {name: q, config: kd_toy.py, student: S, method: m, compare_to: r}', 'share seeds'),
    ('!!python/object/apply:os.system ["touch {marker}"]', 'not a plain YAML table'),
    ('- just a list', 'a table is a mapping'),
    ('seed: [0]\nrows: []', "unknown key(s) 'seed'"),
    ('seeds: [0]\nrows: []', 'rows must be a non-empty list'),
    ('seeds: [0]\nrows:\n  - {name: r, student: S, method: m}', "row 'r': missing key(s) config"),
    ('seeds: [0]\nrows:\n  - {name: r, config: plain_toy.py, student: S, method: m, cfg_option: {}}',
     "row 'r': unknown key(s) 'cfg_option'"),
    ('seeds: [0]\nrows:\n  - {name: r, config: nope.py, student: S, method: m}', "row 'r' config:"),
    ('seeds: [0]\nrows:\n  - {name: a/b, config: plain_toy.py, student: S, method: m}', 'is a folder name'),
    ('rows:\n  - {name: r, config: plain_toy.py, student: S, method: m}', "row 'r': no seeds"),
    ('seeds: [0, 0]\nrows:\n  - {name: r, config: plain_toy.py, student: S, method: m}', 'seeds repeat a seed'),
    ('seeds: 3\nrows:\n  - {name: r, config: plain_toy.py, student: S, method: m}', 'seeds must be a non-empty list'),
    ('seeds: [0]\nrows:\n  - {name: r, config: plain_toy.py, student: S, method: m, seeds: [true]}',
     "row 'r' seeds: seeds must be"),
    ('seeds: [0]\nrows:\n  - {name: r, config: plain_toy.py, student: S, method: m}\n'
     '  - {name: r, config: kd_toy.py, student: S, method: k}', 'repeated: r'),
    ('seeds: [0]\nrows:\n  - {name: a, config: plain_toy.py, student: S, method: m, baseline: true}\n'
     '  - {name: b, config: kd_toy.py, student: S, method: k, baseline: true}', "student 'S' has 2 baseline rows"),
    ('seeds: [0]\nrows:\n  - {name: r, config: plain_toy.py, student: S, method: m, baseline: yes please}',
     "row 'r' baseline: expected true or false"),
    ('seeds: [0]\nrows:\n  - {name: r, config: kd_toy.py, student: S, method: m, teacher_from: t}',
     "row 'r' teacher_from: no row is called 't'"),
    ('seeds: [0, 1]\nrows:\n  - {name: t, config: teacher_toy.py, student: T, method: m}\n'
     '  - {name: r, config: kd_toy.py, student: S, method: m, teacher_from: t}', "the row 't' has 2 seeds"),
    ('seeds: [0]\nrows:\n  - {name: r, config: plain_toy.py, student: S, method: m, cfg_options: {a.b: {c: 1}}}',
     "row 'r' cfg_options a.b: dict values are not allowed"),
    ('seeds: [0]\nrows:\n  - {name: r, config: plain_toy.py, student: S, method: m, cfg_options: {a: x y}}',
     "row 'r' cfg_options a: the string 'x y' cannot be passed"),
    ('seeds: [0]\ncfg_options: [a=1]\nrows:\n  - {name: r, config: plain_toy.py, student: S, method: m}',
     'cfg_options must be a mapping'),
    ('seeds: [0]\nrows:\n  - {name: r, config: plain_toy.py, student: S (x, y), method: m}', "unknown key(s) 'y)'"),
]


@pytest.mark.parametrize('text, message', BAD_TABLES, ids=[message for _, message in BAD_TABLES])
def test_a_bad_table_is_refused_naming_the_row_and_key(text, message, tmp_path):
    marker = tmp_path / 'ran'
    with pytest.raises(TableError) as error:
        load_table(write_table(tmp_path, text.replace('{marker}', str(marker))))
    assert message in str(error.value) and str(tmp_path / 'table.yaml') in str(error.value)
    assert not marker.exists()  # a python tag never runs


def test_summary_mean_sample_std_and_delta_by_hand(tmp_path):
    table = load_table(write_table(tmp_path, """
seeds: [0, 1, 2]
rows:
  - {name: teacher, config: teacher_toy.py, student: T, method: supervised, seeds: [0]}
  - {name: plain, config: plain_toy.py, student: S, method: none, baseline: true}
  - {name: gdkd, config: gdkd_toy.py, student: S, method: GDKD, teacher_from: teacher}
  - {name: other_plain, config: plain_toy.py, student: U, method: none, baseline: true}
  - {name: other_kd, config: kd_toy.py, student: U, method: KD, teacher_from: teacher}
"""))
    values = {('teacher', 0): 80.0, ('plain', 0): 70.0, ('plain', 1): 71.0, ('plain', 2): 72.5,
              ('gdkd', 0): 72.0, ('gdkd', 1): 73.0, ('other_kd', 0): 60.0}
    teacher, plain, gdkd, other_plain, other_kd = summarise(table, values)
    # 70, 71, 72.5: mean 213.5 / 3; squared deviations 49/36, 1/36, 16/9 sum to 19/6, / (3 - 1) = 19/12
    assert plain.mean == pytest.approx(213.5 / 3) and plain.std == pytest.approx(math.sqrt(19 / 12))
    assert plain.vs_baseline is None and plain.vs_compared == {}
    assert gdkd.values == {0: 72.0, 1: 73.0} and gdkd.mean == 72.5 and gdkd.std == pytest.approx(math.sqrt(0.5))
    # paired on the seeds both finished (0, 1): differences 2 and 2, mean 2, spread 0: the interval is [2, 2]
    assert gdkd.vs_baseline.differences == {0: 2.0, 1: 2.0} and gdkd.vs_baseline.mean == 2.0
    assert (gdkd.vs_baseline.low, gdkd.vs_baseline.high, gdkd.vs_baseline.above) == (2.0, 2.0, 2)
    assert teacher.mean == 80.0 and math.isnan(teacher.std) and teacher.vs_baseline is None  # no baseline for T
    assert math.isnan(other_plain.mean) and other_kd.vs_baseline.differences == {}  # the baseline has not finished

    for (name, seed), value in values.items():  # the report reads the runs' result.json files
        folder = tmp_path / 'out' / name / f'seed{seed}'
        folder.mkdir(parents=True)
        (folder / 'result.json').write_text(json.dumps({'metrics': {'mIoU': value, 'aAcc': 90.0}}))
    paths = write_report(table, str(tmp_path / 'out'))
    markdown = open(paths['markdown']).read()
    assert '7 of 13 runs finished' in markdown and 'n - 1' in markdown
    assert '| student | method | seed 0 | seed 1 | seed 2 | mean ± std | Δ vs baseline, paired (95% CI) |' in markdown
    assert 'compare_to' not in markdown.split('\n\n')[-1]  # no row names one: no column
    assert '| T | supervised | 80.00 |  |  | 80.00 |  |' in markdown
    assert '| S | none | 70.00 | 71.00 | 72.50 | 71.17 ± 1.26 | baseline |' in markdown
    assert '| S | GDKD | 72.00 | 73.00 | – | 72.50 ± 0.71 | +2.00 [+2.00, +2.00], 2 of 2 above, **separated** |' \
        in markdown
    assert '| U | none | – | – | – | – | baseline |' in markdown
    assert '| U | KD | 60.00 | – | – | 60.00 | – |' in markdown
    with open(paths['csv'], newline='') as file:
        lines = list(csv.DictReader(file))
    assert [line['row'] for line in lines] == ['teacher', 'plain', 'gdkd', 'other_plain', 'other_kd']
    assert {key: lines[2][key] for key in ('seeds_finished', 'mIoU_mean', 'mIoU_std', 'vs_baseline_mean',
                                           'vs_baseline_seeds_above', 'vs_baseline_separated', 'seed_0', 'seed_1',
                                           'seed_2')} == {
        'seeds_finished': '2', 'mIoU_mean': '72.50', 'mIoU_std': '0.71', 'vs_baseline_mean': '2.00',
        'vs_baseline_seeds_above': '2', 'vs_baseline_separated': 'True', 'seed_0': '72.00', 'seed_1': '73.00',
        'seed_2': ''}
    assert lines[0]['vs_baseline_mean'] == '' and lines[0]['config'] == osp.relpath(osp.join(DEMO, 'teacher_toy.py'))
    chart = cv2.imread(paths['chart'])
    assert chart is not None and chart.shape[0] >= 300


def test_paired_statistics_by_hand(tmp_path):
    """Per-seed differences, their mean, the 95 % t-interval (t(0.975, 2) = 4.3027 from a table of Student's t) and
    the sign counts, in the summary, table.md and table.csv, against the row's baseline and its compare_to row."""
    table = load_table(write_table(tmp_path, """
seeds: [0, 1, 2]
rows:
  - {name: plain, config: plain_toy.py, student: S, method: none, baseline: true}
  - {name: kd, config: kd_toy.py, student: S, method: KD}
  - {name: gdkd, config: gdkd_toy.py, student: S, method: GDKD, compare_to: kd}
"""))
    values = {('plain', 0): 10.0, ('plain', 1): 12.0, ('plain', 2): 14.0,
              ('kd', 0): 11.0, ('kd', 1): 14.0, ('kd', 2): 17.0,       # +1, +2, +3 over plain
              ('gdkd', 0): 13.0, ('gdkd', 1): 16.5, ('gdkd', 2): 20.0}  # +2, +2.5, +3 over kd
    plain, kd, gdkd = summarise(table, values)
    t = 4.302652729911275
    # kd - plain: mean 2, sample std 1: half width 4.3027 / sqrt(3) = 2.4841: [-0.48, 4.48], not separated
    assert kd.vs_baseline.mean == pytest.approx(2.0)
    assert (kd.vs_baseline.low, kd.vs_baseline.high) == pytest.approx((2 - t / math.sqrt(3), 2 + t / math.sqrt(3)))
    assert (kd.vs_baseline.above, kd.vs_baseline.below, kd.vs_baseline.separated) == (3, 0, False)
    assert kd.vs_compared == {} and gdkd.row.compare_to == ('kd',)
    # gdkd - kd: 2, 2.5, 3: mean 2.5, sample std 0.5: half width 1.2421: [1.26, 3.74], separated
    versus_kd = gdkd.vs_compared['kd']
    assert versus_kd.differences == {0: 2.0, 1: 2.5, 2: 3.0} and versus_kd.separated and versus_kd.other == 'kd'
    half_width = t * 0.5 / math.sqrt(3)
    assert (versus_kd.low, versus_kd.high) == pytest.approx((2.5 - half_width, 2.5 + half_width))
    # gdkd - plain: 3, 4.5, 6: mean 4.5, std 1.5: [0.77, 8.23], separated
    assert gdkd.vs_baseline.low == pytest.approx(4.5 - t * 1.5 / math.sqrt(3)) and gdkd.vs_baseline.separated
    # a seed below and one equal; a single seed has no interval
    mixed = paired_difference({0: 1.0, 1: 2.0, 2: 3.0}, {0: 2.0, 1: 2.0, 2: 1.0}, 'x')
    assert (mixed.above, mixed.below, mixed.mean) == (1, 1, pytest.approx(1 / 3)) and not mixed.separated
    single = paired_difference({0: 5.0}, {0: 4.0, 1: 1.0}, 'x')
    assert single.mean == 1.0 and math.isnan(single.low) and not single.separated

    for (name, seed), value in values.items():
        folder = tmp_path / 'out' / name / f'seed{seed}'
        folder.mkdir(parents=True)
        (folder / 'result.json').write_text(json.dumps({'metrics': {'mIoU': value}}))
    paths = write_report(table, str(tmp_path / 'out'))
    markdown = open(paths['markdown']).read()
    assert '| Δ vs baseline, paired (95% CI) | Δ vs KD, paired (95% CI) |' in markdown
    assert '| S | KD | 11.00 | 14.00 | 17.00 | 14.00 ± 3.00 | +2.00 [-0.48, +4.48], 3 of 3 above |  |' in markdown
    assert ('| S | GDKD | 13.00 | 16.50 | 20.00 | 16.50 ± 3.50 | +4.50 [+0.77, +8.23], 3 of 3 above, **separated** '
            '| +2.50 [+1.26, +3.74], 3 of 3 above, **separated** |') in markdown
    with open(paths['csv'], newline='') as file:
        lines = {line['row']: line for line in csv.DictReader(file)}
    assert {key: lines['gdkd'][key] for key in ('vs_kd_mean', 'vs_kd_ci_low', 'vs_kd_ci_high', 'vs_kd_seeds_above',
                                                'vs_kd_seeds_below', 'vs_kd_separated')} == {
        'vs_kd_mean': '2.50', 'vs_kd_ci_low': '1.26', 'vs_kd_ci_high': '3.74', 'vs_kd_seeds_above': '3',
        'vs_kd_seeds_below': '0', 'vs_kd_separated': 'True'}
    assert lines['kd']['vs_baseline_separated'] == 'False' and lines['kd']['vs_kd_mean'] == ''
    # several comparators: a list
    several = load_table(write_table(tmp_path, """
seeds: [0, 1]
rows:
  - {name: kd, config: kd_toy.py, student: S, method: KD}
  - {name: dkd, config: kd_toy.py, student: S, method: DKD}
  - {name: gdkd, config: gdkd_toy.py, student: S, method: GDKD, compare_to: [kd, dkd]}
"""))
    assert several.row('gdkd').compare_to == ('kd', 'dkd')
    summary = summarise(several, {('kd', 0): 1.0, ('dkd', 0): 2.0, ('gdkd', 0): 4.0})[2]
    assert {name: paired.mean for name, paired in summary.vs_compared.items()} == {'kd': 3.0, 'dkd': 2.0}
    assert cv2.imread(paths['chart']) is not None


def test_next_step_skips_finished_runs_and_resumes_interrupted_ones(tmp_path):
    folder = str(tmp_path)
    assert next_step(folder) == 'train'
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    assert next_step(folder) == 'resume'
    (tmp_path / 'trained.json').write_text('{}')
    assert next_step(folder) == 'evaluate'
    (tmp_path / 'result.json').write_text('{}')
    assert next_step(folder) == 'done'


def test_a_run_folder_of_other_settings_is_refused(tmp_path):
    table = load_table(write_table(tmp_path, TWO_ROWS))
    run = runs_of(table, str(tmp_path / 'out'))[0]
    check_settings(run, run_options(run, {}, None))
    check_settings(run, run_options(run, {}, None))  # the same settings: fine
    with pytest.raises(TableError, match=r"cfg_options.*choose another --out, or delete the folder"):
        check_settings(run, run_options(run, {'train_cfg.max_iters': '9'}, None))
    # execute() refuses it before any run starts
    with pytest.raises(TableError, match=r"plain/seed0 holds a run started with other settings"):
        execute(table, str(tmp_path / 'out'), Launcher(), extra_options={'train_cfg.max_iters': '9'})
    assert glob.glob(str(tmp_path / 'out' / '*' / '*' / '*.log')) == []
    for options, row in (({'randomness.seed': '3'}, 0), ({'model.teacher_ckpt': 'x.pth'}, 4)):
        teacher_table = load_table(write_table(tmp_path, """
seeds: [0]
rows:
  - {name: t, config: teacher_toy.py, student: T, method: m}
  - {name: r, config: kd_toy.py, student: S, method: m, teacher_from: t}
"""))
        with pytest.raises(TableError, match='is set by the harness'):
            run_options(runs_of(teacher_table, str(tmp_path))[min(row, 1)], options, None)


# (key, value): settings the harness sets for each run, a dict holding one, a value inside one, and output folders
# named anywhere (a list index stands for any item)
HARNESS_OWNED = [
    ('work_dir', 'elsewhere'), ('resume', True), ('load_from', 'other.pth'), ('launcher', 'pytorch'),
    ('randomness.seed', 3), ('randomness', None), ('default_hooks.checkpoint.out_dir', '/elsewhere'),
    ('default_hooks.checkpoint', None), ('default_hooks', None), ('default_hooks.checkpoint.filename_tmpl', 'x.pth'),
    ('default_hooks.logger.out_dir', '/elsewhere'), ('visualizer.save_dir', '/elsewhere'),
    ('visualizer.vis_backends.0.save_dir', '/elsewhere'), ('test_evaluator.output_dir', '/elsewhere'),
    ('test_evaluator.0.output_dir', '/elsewhere'), ('test_evaluator.keep_results', True),
    ('val_evaluator.output_dir', '/elsewhere'), ('custom_hooks.0.out_dir', '/elsewhere'),
    ('default_hooks.checkpoint.out_dir.sub', 'x'),
]
# keys beside the owned ones, which a table sets freely
HARNESS_NEIGHBOURS = {'default_hooks.checkpoint.interval': 5, 'default_hooks.checkpoint.max_keep_ckpts': 2,
                      'default_hooks.logger.interval': 1, 'randomness.deterministic': False, 'val_evaluator': None,
                      'test_evaluator.iou_metrics': ['mIoU'], 'train_dataloader.dataset.data_root': 'data/toy',
                      'model.teacher_ckpt': 'teacher.pth'}


def harness_table(tmp_path, table_options: dict, row_options: dict, teacher_from: bool = False) -> str:
    """A table of a teacher row ``t`` and a row ``r`` (learning from ``t`` when ``teacher_from``) with the given
    table-wide and row options."""
    row = {'name': 'r', 'config': 'kd_toy.py', 'student': 'S', 'method': 'm', 'cfg_options': row_options}
    if teacher_from:
        row['teacher_from'] = 't'
    return write_table(tmp_path, yaml.safe_dump({'seeds': [0], 'cfg_options': table_options, 'rows': [
        {'name': 't', 'config': 'teacher_toy.py', 'student': 'T', 'method': 'teacher'}, row]}, sort_keys=False))


@pytest.mark.parametrize('level', ['table', 'row'])
@pytest.mark.parametrize('key, value', HARNESS_OWNED, ids=[key for key, _ in HARNESS_OWNED])
def test_cfg_options_the_harness_owns_are_refused_on_loading(key, value, level, tmp_path):
    table = load_table(harness_table(tmp_path, HARNESS_NEIGHBOURS, HARNESS_NEIGHBOURS))
    assert table.row('r').cfg_options == {name: option_value(item, name) for name, item in HARNESS_NEIGHBOURS.items()}
    options = dict(HARNESS_NEIGHBOURS, **{key: value})
    path = harness_table(tmp_path, options if level == 'table' else {}, options if level == 'row' else {})
    where = f'{path}: cfg_options: ' if level == 'table' else f"{path}: row 'r' cfg_options: "
    with pytest.raises(TableError, match='set by the harness') as error:
        load_table(path)
    assert str(error.value).startswith(where + key + ' ')


@pytest.mark.parametrize('key', ['model.teacher_ckpt', 'model'])
def test_the_teacher_of_a_teacher_from_row_is_refused_on_loading(key, tmp_path):
    # a row without teacher_from names its own teacher
    load_table(harness_table(tmp_path, {key: 'teacher.pth'}, {key: 'teacher.pth'}))
    path = harness_table(tmp_path, {}, {key: 'teacher.pth'}, teacher_from=True)
    with pytest.raises(TableError, match=rf"^{re.escape(path)}: row 'r' cfg_options: {key} .*set by the harness"):
        load_table(path)
    path = harness_table(tmp_path, {key: 'teacher.pth'}, {}, teacher_from=True)
    with pytest.raises(TableError, match=rf"^{re.escape(path)}: row 'r': the table's cfg_options: {key} .*set by "
                                         'the harness'):
        load_table(path)


def test_command_line_options_the_harness_owns_are_refused_before_any_run(tmp_path, monkeypatch):
    table = harness_table(tmp_path, {}, {})
    for option in ('default_hooks.checkpoint=None', 'visualizer.vis_backends.0.save_dir=/elsewhere'):
        with pytest.raises(TableError, match=rf"row 't' cfg_options: {option.split('=')[0]} .*set by the harness"):
            dry_run(load_table(table), str(tmp_path / 'out'), Launcher(), parse_cfg_options([option]))
    result = run_tool_here('reproduce/run_table.py', table, '--out', str(tmp_path / 'out'), '--cfg-options',
                           'default_hooks.checkpoint.out_dir=/elsewhere', monkeypatch=monkeypatch)
    assert_user_error(result, "row 't' cfg_options: default_hooks.checkpoint.out_dir is set by the harness")
    assert not (tmp_path / 'out').exists()


def test_test_metrics_are_read_from_the_newest_evaluation(tmp_path):
    for stamp, miou in (('20260101_000000', 1.0), ('20260102_000000', 2.0)):
        (tmp_path / stamp).mkdir()
        (tmp_path / stamp / f'{stamp}.json').write_text(json.dumps({'mIoU': miou}))
    (tmp_path / '20260103_000000').mkdir()  # an evaluation that died before writing its metrics
    assert read_test_metrics(str(tmp_path)) == {'mIoU': 2.0}
    with pytest.raises(RunFailed, match='wrote no metrics file'):
        read_test_metrics(str(tmp_path / '20260103_000000'))


def test_dry_run_commands_of_each_launcher(tmp_path):
    table = load_table(write_table(tmp_path, """
seeds: [0, 1]
save_predictions: true
rows:
  - {name: teacher, config: teacher_toy.py, student: T, method: m, seeds: [0]}
  - {name: kd, config: kd_toy.py, student: S, method: KD, teacher_from: teacher, cfg_options: {train_cfg.max_iters: 4}}
"""))
    out = str(tmp_path / 'out')
    teacher, kd0, kd1 = runs_of(table, out)
    # the teacher has finished; kd/seed0 was interrupted; kd/seed1 has trained but not been evaluated
    os.makedirs(kd0.work_dir)
    os.makedirs(kd1.work_dir)
    os.makedirs(teacher.work_dir)
    for run, name, content in ((teacher, 'trained.json', {'checkpoint': '/ckpt/teacher.pth'}),
                               (teacher, 'result.json', {}), (kd1, 'trained.json', {'checkpoint': '/ckpt/kd1.pth'})):
        with open(osp.join(run.work_dir, name), 'w') as file:
            json.dump(content, file)
    with open(osp.join(kd0.work_dir, 'last_checkpoint'), 'w') as file:
        file.write('iter_2.pth')
    tools = osp.join(REPO_ROOT, 'tools')
    config = osp.join(DEMO, 'kd_toy.py')
    options = ['--cfg-options', 'train_cfg.max_iters=4', 'randomness.seed=0']

    lines = dry_run(table, out, Launcher('pytorch', gpus=8))
    assert lines[0] == '# teacher/seed0: finished (result.json), skipped'
    assert shlex.split(lines[1]) == [osp.join(tools, 'dist_train.sh'), config, '8', '--work-dir', kd0.work_dir,
                                     '--resume'] + options + ['model.teacher_ckpt=/ckpt/teacher.pth']
    assert shlex.split(lines[2]) == [osp.join(tools, 'dist_test.sh'), config, '<final checkpoint of kd/seed0>', '8',
                                     '--work-dir', osp.join(kd0.work_dir, 'eval'), '--out',
                                     osp.join(kd0.work_dir, 'predictions')] + options
    assert shlex.split(lines[3])[:3] == [osp.join(tools, 'dist_test.sh'), config, '/ckpt/kd1.pth'] and len(lines) == 4

    lines = dry_run(table, out, Launcher('slurm', gpus=16, partition='gpu'))
    words = shlex.split(lines[1])
    assert words[:3] == ['GPUS=16', 'GPUS_PER_NODE=8', f'PYTHON={Launcher().python}']
    assert words[3:8] == [osp.join(tools, 'slurm_train.sh'), 'gpu', 'kd-seed0', config, '--work-dir']
    words = shlex.split(lines[2])
    assert words[1:8] == ['srun', '-p', 'gpu', '--job-name=kd-seed0-eval', '--gres=gpu:1', '--ntasks=1',
                          '--kill-on-bad-exit=1'] and words[0].startswith(f'PYTHONPATH={REPO_ROOT}')
    assert words[8:11] == [Launcher().python, osp.join(tools, 'test.py'), config]

    # before the teacher has trained, its checkpoint is named, not guessed
    os.remove(osp.join(teacher.work_dir, 'trained.json'))
    os.remove(osp.join(teacher.work_dir, 'result.json'))
    lines = dry_run(table, out, Launcher())
    assert shlex.split(lines[0])[:3] == [Launcher().python, osp.join(tools, 'train.py'),
                                         osp.join(DEMO, 'teacher_toy.py')]
    assert 'model.teacher_ckpt=<final checkpoint of teacher/seed0>' in shlex.split(lines[2])


def test_launcher_and_jobs_are_checked(tmp_path):
    with pytest.raises(ValueError, match='needs --partition'):
        Launcher('slurm', gpus=8)
    with pytest.raises(ValueError, match='choose one of none, pytorch, slurm'):
        Launcher('mpi')
    table = load_table(write_table(tmp_path, TWO_ROWS))
    with pytest.raises(ValueError, match='--jobs 2: .* 1 with --launcher pytorch'):
        execute(table, str(tmp_path / 'out'), Launcher('pytorch', gpus=2), jobs=2)


def test_a_failing_run_is_reported_and_the_summary_still_written(tmp_path, monkeypatch):
    table = write_table(tmp_path, """
seeds: [0]
rows:
  - {name: broken, config: plain_toy.py, student: S, method: none, baseline: true, cfg_options: {no_such_key: 1}}
""")
    out = tmp_path / 'out'
    result = run_tool_here('reproduce/run_table.py', table, '--out', str(out), monkeypatch=monkeypatch)
    assert result.returncode == 1
    # the unknown key is the user's mistake, which tools/train.py refuses with status 2
    assert 'broken/seed0: training failed (exit status 2)' in result.stderr
    log = (out / 'broken' / 'seed0' / 'train.log').read_text()
    assert "nothing in the run reads a top-level 'no_such_key'" in log
    assert not (out / 'broken' / 'seed0' / 'trained.json').exists()
    assert '0 of 1 runs finished' in (out / 'table.md').read_text() and (out / 'table.csv').exists()
    # a dry run of the same table prints the command that failed, now to be retried
    dry = run_tool_here('reproduce/run_table.py', table, '--out', str(out), '--dry-run', monkeypatch=monkeypatch)
    assert f'{osp.join(REPO_ROOT, "tools", "train.py")} {osp.join(DEMO, "plain_toy.py")} --work-dir ' \
           f'{out / "broken" / "seed0"} --cfg-options no_such_key=1 randomness.seed=0' in dry.stdout
