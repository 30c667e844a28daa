"""The summary of a table's runs: a markdown table (per-seed values, mean ± sample std over seeds, and each row's
per-seed differences to its student's no-distillation baseline and to the rows it names in ``compare_to``), the same
as CSV, and a chart, from the runs' ``result.json`` files.

Seeds pair runs (the same seed gives the rows of one student the same initial weights and data order), so rows are
compared by their per-seed differences: their mean, its 95 % t-interval over the seeds that both rows finished, and
how many seeds fall on each side. A row is *separated* from another only where that interval excludes 0.
"""
import math
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from scipy import stats

from ..utils.tables import markdown_table, write_csv
from .runs import RESULT_FILE, read_json, runs_of
from .table import Row, Table

STD_NOTE = 'sample standard deviation over the seeds (n - 1 in the denominator)'
CONFIDENCE = 0.95


@dataclass(frozen=True)
class PairedDifference:
    """A row minus another row of its student, seed by seed.

    Attributes:
        other: the other row's name.
        differences: seed -> this row's metric minus the other's, for the seeds both finished.
        mean: their mean (NaN without any).
        low, high: the 95 % t-interval of the mean difference (Student's t with n − 1 degrees of freedom, n the
            seeds); NaN with fewer than two seeds.
        above, below: how many seeds this row is above / below the other.
    """
    other: str
    differences: Dict[int, float]
    mean: float
    low: float
    high: float
    above: int
    below: int

    @property
    def separated(self) -> bool:
        """Whether the interval excludes 0."""
        return self.low > 0 or self.high < 0


def paired_difference(values: Dict[int, float], other_values: Dict[int, float], other: str) -> PairedDifference:
    """The per-seed differences ``values − other_values`` on their common seeds, with mean, 95 % t-interval and
    sign counts (see :class:`PairedDifference`)."""
    differences = {seed: values[seed] - other_values[seed] for seed in values if seed in other_values}
    array = np.array(list(differences.values()), dtype=np.float64)
    mean = float(array.mean()) if array.size else math.nan
    low = high = math.nan
    if array.size > 1:
        half_width = stats.t.ppf(0.5 + CONFIDENCE / 2, array.size - 1) * array.std(ddof=1) / math.sqrt(array.size)
        low, high = mean - half_width, mean + half_width
    return PairedDifference(other, differences, mean, low, high, int((array > 0).sum()), int((array < 0).sum()))


@dataclass(frozen=True)
class RowSummary:
    """One row's values over its seeds.

    Attributes:
        row: the table row.
        values: seed -> metric, for the seeds whose run has finished.
        mean: their mean; NaN without values.
        std: their sample standard deviation (n - 1); NaN with fewer than two values.
        vs_baseline: the row minus its student's baseline row, seed by seed; None for a baseline row and for a
            student without one.
        vs_compared: the row minus each of its ``compare_to`` rows, seed by seed, by that row's name.
    """
    row: Row
    values: Dict[int, float]
    mean: float
    std: float
    vs_baseline: Optional[PairedDifference]
    vs_compared: Dict[str, PairedDifference]


def collect(table: Table, out: str) -> Dict[Tuple[str, int], dict]:
    """The ``result.json`` of every finished run of ``table`` under ``out``, by (row name, seed)."""
    return {(run.row.name, run.seed): read_json(osp.join(run.work_dir, RESULT_FILE))
            for run in runs_of(table, out) if osp.isfile(osp.join(run.work_dir, RESULT_FILE))}


def summarise(table: Table, values: Dict[Tuple[str, int], float]) -> List[RowSummary]:
    """Mean, sample std and the paired differences of every row, from the metric of each finished (row, seed)."""
    found = {row.name: {seed: float(values[row.name, seed]) for seed in row.seeds if (row.name, seed) in values}
             for row in table.rows}
    summaries = []
    for row in table.rows:
        array = np.array(list(found[row.name].values()), dtype=np.float64)
        baseline = table.baseline_of(row)
        vs_baseline = None if baseline is None or baseline is row else \
            paired_difference(found[row.name], found[baseline.name], baseline.name)
        vs_compared = {name: paired_difference(found[row.name], found[name], name) for name in row.compare_to}
        summaries.append(RowSummary(row, found[row.name], float(array.mean()) if array.size else math.nan,
                                    float(array.std(ddof=1)) if array.size > 1 else math.nan, vs_baseline,
                                    vs_compared))
    return summaries


def _number(value: float, signed: bool = False) -> str:
    return '' if value is None or math.isnan(value) else f'{value:+.2f}' if signed else f'{value:.2f}'


def _shown(path: str) -> str:
    """``path`` relative to the working directory when it lies below it (as a user would type it)."""
    relative = osp.relpath(path)
    return path if relative.startswith('..') else relative


def _seeds(table: Table) -> List[int]:
    return sorted({seed for row in table.rows for seed in row.seeds})


def _compared_rows(summaries: List[RowSummary]) -> List[str]:
    """The rows some row names in ``compare_to``, in table order: one column each."""
    named = {name for summary in summaries for name in summary.row.compare_to}
    return [summary.row.name for summary in summaries if summary.row.name in named]


def _paired_cell(paired: Optional[PairedDifference]) -> str:
    """``+1.08 [-1.9, +4.1], 2 of 3 above`` (``separated`` where the interval excludes 0); ``–`` without a common
    seed; the mean alone with one."""
    if paired is None:
        return ''
    if not paired.differences:
        return '–'
    cell = _number(paired.mean, signed=True)
    if not math.isnan(paired.low):
        cell += f' [{paired.low:+.2f}, {paired.high:+.2f}]'
    cell += f', {paired.above} of {len(paired.differences)} above'
    if paired.below + paired.above < len(paired.differences):
        cell += f', {len(paired.differences) - paired.above - paired.below} equal'
    return cell + (', **separated**' if paired.separated else '')


def markdown(table: Table, summaries: List[RowSummary], finished: int, total: int) -> str:
    """The markdown table: student, method, one column per seed, mean ± std, the paired differences to the
    baseline and to each row named in a ``compare_to``."""
    seeds = _seeds(table)
    compared = _compared_rows(summaries)
    rows = []
    for summary in summaries:
        cells = [_number(summary.values[seed]) if seed in summary.values else
                 ('–' if seed in summary.row.seeds else '') for seed in seeds]
        spread = f'{_number(summary.mean)} ± {_number(summary.std)}' if not math.isnan(summary.std) else \
            _number(summary.mean) or '–'
        versus = 'baseline' if summary.row.baseline else _paired_cell(summary.vs_baseline)
        rows.append([summary.row.student, summary.row.method, *cells, spread, versus,
                     *(_paired_cell(summary.vs_compared.get(name)) for name in compared)])
    header = ['student', 'method', *(f'seed {seed}' for seed in seeds), 'mean ± std',
              f'Δ vs baseline, paired ({CONFIDENCE:.0%} CI)'] + [
        f'Δ vs {table.row(name).method}, paired ({CONFIDENCE:.0%} CI)' for name in compared]
    return (f'# {table.title}\n\n{table.metric} of each run as `tools/test.py` reported it; mean ± {STD_NOTE}. Δ: '
            'paired by seed (a seed gives the rows of one student the same initial weights and data order): the mean '
            'of the per-seed differences to the same student\'s baseline row (no distillation) or to the row named '
            f'in `compare_to`, its {CONFIDENCE:.0%} t-interval (n − 1 degrees of freedom over the n seeds both rows '
            'finished) and on how many seeds the row is above; **separated** only where the interval excludes 0. '
            f'{finished} of {total} runs finished.\n\n' + markdown_table(header, rows))


def _paired_columns(paired: Optional[PairedDifference]) -> list:
    if paired is None:
        return ['', '', '', '', '', '']
    return [_number(paired.mean), _number(paired.low), _number(paired.high), paired.above, paired.below,
            paired.separated if paired.differences else '']


PAIRED_FIELDS = ('mean', 'ci_low', 'ci_high', 'seeds_above', 'seeds_below', 'separated')


def write_table_csv(table: Table, summaries: List[RowSummary], path: str) -> None:
    """One line per row: name, labels, config, baseline flag, finished seeds, mean, std, the paired differences
    (mean, interval, sign counts, separated) to the baseline (``vs_baseline_*``) and to each row named in a
    ``compare_to`` (``vs_<row>_*``), then per seed."""
    seeds = _seeds(table)
    compared = _compared_rows(summaries)
    header = (['row', 'student', 'method', 'config', 'baseline', 'seeds_finished', f'{table.metric}_mean',
               f'{table.metric}_std'] + [f'vs_{other}_{name}' for other in ('baseline', *compared)
                                         for name in PAIRED_FIELDS] + [f'seed_{seed}' for seed in seeds])
    rows = [[summary.row.name, summary.row.student, summary.row.method, _shown(summary.row.config),
             summary.row.baseline, len(summary.values), _number(summary.mean), _number(summary.std),
             *_paired_columns(summary.vs_baseline),
             *(value for name in compared for value in _paired_columns(summary.vs_compared.get(name)))] +
            [_number(summary.values[seed]) if seed in summary.values else '' for seed in seeds]
            for summary in summaries]
    write_csv(path, header, rows)


def write_bar_chart(table: Table, summaries: List[RowSummary], path: str) -> None:
    """Left: bars of the means (error bars: the std) with each seed's value as a dot, grouped by student, one colour
    per method. Right: each row's paired differences to its baseline (circles) and to its ``compare_to`` rows (one
    marker each), with their 95 % t-intervals as error bars (separated where a bar does not cross 0)."""
    methods = list(dict.fromkeys(summary.row.method for summary in summaries))
    compared = _compared_rows(summaries)
    markers = dict(zip([None, *compared], 'osD^v<>p*h'))
    colours = matplotlib.colormaps['tab10']
    fig = Figure(figsize=(max(9.0, 1.0 * len(summaries) + 4), 4.8))
    ax, paired_ax = fig.subplots(1, 2)
    position, ticks, labels, previous = 0.0, [], [], None
    for summary in summaries:
        if previous is not None and summary.row.student != previous:
            position += 0.7  # a gap between students
        previous = summary.row.student
        colour = colours(methods.index(summary.row.method) % 10)
        if not math.isnan(summary.mean):
            ax.bar(position, summary.mean, 0.8, color=colour,
                   yerr=None if math.isnan(summary.std) else summary.std, capsize=3)
            ax.scatter([position] * len(summary.values), list(summary.values.values()), s=10, color='black',
                       zorder=3)
        pairs = [(None, summary.vs_baseline), *summary.vs_compared.items()]
        for index, (name, paired) in enumerate(pairs):
            if paired is None or math.isnan(paired.mean):
                continue
            interval = None if math.isnan(paired.low) else [[paired.mean - paired.low], [paired.high - paired.mean]]
            paired_ax.errorbar(position + 0.25 * (index - (len(pairs) - 1) / 2), paired.mean, yerr=interval,
                               fmt=markers.get(name, 'o'), color=colour, capsize=3)
        ticks.append(position)
        labels.append(f'{summary.row.student}\n{summary.row.method}')
        position += 1.0
    for axes in (ax, paired_ax):
        axes.set_xticks(ticks)
        axes.set_xticklabels(labels, rotation=60, ha='right', fontsize=8)
    finished = [summary.mean for summary in summaries if not math.isnan(summary.mean)]
    if finished:
        spread = max(finished) - min(finished)
        ax.set_ylim(max(0.0, min(finished) - max(spread, 1.0)), max(finished) + max(spread, 1.0) * 0.5)
    ax.set_ylabel(table.metric)
    ax.set_title('mean ± sample std over seeds; dots: seeds', fontsize=9)
    paired_ax.axhline(0.0, color='grey', linewidth=0.8)
    paired_ax.set_ylabel(f'Δ {table.metric}, paired by seed')
    legend = ', vs '.join(f'{table.row(name).method} ({markers[name]})' for name in compared)
    paired_ax.set_title(f'Δ paired by seed, {CONFIDENCE:.0%} t-interval\nvs baseline (o)'
                        + (f', vs {legend}' if legend else ''), fontsize=9)
    fig.suptitle(table.title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def write_report(table: Table, out: str) -> Dict[str, str]:
    """Write ``table.md``, ``table.csv`` and ``table.png`` into ``out`` from the finished runs.

    Returns:
        The paths written, by kind (``markdown``, ``csv``, ``chart``).
    """
    results = collect(table, out)
    summaries = summarise(table, {key: result['metrics'][table.metric] for key, result in results.items()})
    paths = {kind: osp.join(out, f'table.{ext}') for kind, ext in (('markdown', 'md'), ('csv', 'csv'),
                                                                   ('chart', 'png'))}
    with open(paths['markdown'], 'w', encoding='utf-8') as file:
        file.write(markdown(table, summaries, len(results), len(runs_of(table, out))))
    write_table_csv(table, summaries, paths['csv'])
    write_bar_chart(table, summaries, paths['chart'])
    return paths
