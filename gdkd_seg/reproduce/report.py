"""The summary of a table's runs: a markdown table (per-seed values, mean ± sample std over seeds, the delta to the
student's no-distillation baseline), the same as CSV, and a bar chart, from the runs' ``result.json`` files."""
import math
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from ..utils.tables import markdown_table, write_csv
from .runs import RESULT_FILE, read_json, runs_of
from .table import Row, Table

STD_NOTE = 'sample standard deviation over the seeds (n - 1 in the denominator)'


@dataclass(frozen=True)
class RowSummary:
    """One row's values over its seeds.

    Attributes:
        row: the table row.
        values: seed -> metric, for the seeds whose run has finished.
        mean: their mean; NaN without values.
        std: their sample standard deviation (n - 1); NaN with fewer than two values.
        delta: ``mean`` minus the mean of the student's baseline row; None when the student has no baseline row,
            NaN when either mean is missing.
    """
    row: Row
    values: Dict[int, float]
    mean: float
    std: float
    delta: Optional[float]


def collect(table: Table, out: str) -> Dict[Tuple[str, int], dict]:
    """The ``result.json`` of every finished run of ``table`` under ``out``, by (row name, seed)."""
    return {(run.row.name, run.seed): read_json(osp.join(run.work_dir, RESULT_FILE))
            for run in runs_of(table, out) if osp.isfile(osp.join(run.work_dir, RESULT_FILE))}


def summarise(table: Table, values: Dict[Tuple[str, int], float]) -> List[RowSummary]:
    """Mean, sample std and delta to the baseline of every row, from the metric of each finished (row, seed)."""
    def mean_std(row: Row) -> Tuple[Dict[int, float], float, float]:
        found = {seed: float(values[row.name, seed]) for seed in row.seeds if (row.name, seed) in values}
        array = np.array(list(found.values()), dtype=np.float64)
        return (found, float(array.mean()) if array.size else math.nan,
                float(array.std(ddof=1)) if array.size > 1 else math.nan)

    summaries = []
    for row in table.rows:
        found, mean, std = mean_std(row)
        baseline = table.baseline_of(row)
        delta = None if baseline is None else mean - mean_std(baseline)[1]
        summaries.append(RowSummary(row, found, mean, std, delta))
    return summaries


def _number(value: float, signed: bool = False) -> str:
    return '' if value is None or math.isnan(value) else f'{value:+.2f}' if signed else f'{value:.2f}'


def _shown(path: str) -> str:
    """``path`` relative to the working directory when it lies below it (as a user would type it)."""
    relative = osp.relpath(path)
    return path if relative.startswith('..') else relative


def _seeds(table: Table) -> List[int]:
    return sorted({seed for row in table.rows for seed in row.seeds})


def markdown(table: Table, summaries: List[RowSummary], finished: int, total: int) -> str:
    """The markdown table: student, method, one column per seed, mean ± std, delta to the baseline."""
    seeds = _seeds(table)
    rows = []
    for summary in summaries:
        cells = [_number(summary.values[seed]) if seed in summary.values else
                 ('–' if seed in summary.row.seeds else '') for seed in seeds]
        spread = f'{_number(summary.mean)} ± {_number(summary.std)}' if not math.isnan(summary.std) else \
            _number(summary.mean) or '–'
        delta = 'baseline' if summary.row.baseline else '' if summary.delta is None else \
            _number(summary.delta, signed=True) or '–'
        rows.append([summary.row.student, summary.row.method, *cells, spread, delta])
    header = ['student', 'method', *(f'seed {seed}' for seed in seeds), 'mean ± std', 'Δ vs baseline']
    return (f'# {table.title}\n\n{table.metric} of each run as `tools/test.py` reported it; mean ± {STD_NOTE}; Δ: the '
            f'mean minus the mean of the same student\'s baseline row (no distillation). {finished} of {total} runs '
            f'finished.\n\n' + markdown_table(header, rows))


def write_table_csv(table: Table, summaries: List[RowSummary], path: str) -> None:
    """One line per row: name, labels, config, baseline flag, finished seeds, mean, std, delta, then per seed."""
    seeds = _seeds(table)
    header = ['row', 'student', 'method', 'config', 'baseline', 'seeds_finished', f'{table.metric}_mean',
              f'{table.metric}_std', 'delta_vs_baseline'] + [f'seed_{seed}' for seed in seeds]
    rows = [[summary.row.name, summary.row.student, summary.row.method, _shown(summary.row.config),
             summary.row.baseline, len(summary.values), _number(summary.mean), _number(summary.std),
             '' if summary.delta is None else _number(summary.delta)] +
            [_number(summary.values[seed]) if seed in summary.values else '' for seed in seeds]
            for summary in summaries]
    write_csv(path, header, rows)


def write_bar_chart(table: Table, summaries: List[RowSummary], path: str) -> None:
    """Bars of the means (error bars: the std) with each seed's value as a dot, grouped by student, one colour per
    method."""
    methods = list(dict.fromkeys(summary.row.method for summary in summaries))
    colours = matplotlib.colormaps['tab10']
    fig = Figure(figsize=(max(6.0, 0.5 * len(summaries) + 2), 4.5))
    ax = fig.subplots()
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
        ticks.append(position)
        labels.append(f'{summary.row.student}\n{summary.row.method}')
        position += 1.0
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels, rotation=60, ha='right', fontsize=8)
    finished = [summary.mean for summary in summaries if not math.isnan(summary.mean)]
    if finished:
        spread = max(finished) - min(finished)
        ax.set_ylim(max(0.0, min(finished) - max(spread, 1.0)), max(finished) + max(spread, 1.0) * 0.5)
    ax.set_ylabel(table.metric)
    ax.set_title(f'{table.title} (mean ± sample std over seeds; dots: seeds)')
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
