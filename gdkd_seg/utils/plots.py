"""Charts as PNG files, drawn with matplotlib's object API (no pyplot: the process's backend is left alone)."""
from typing import Dict, Optional, Sequence

import numpy as np
from matplotlib.figure import Figure


def plot_series(series: Dict[str, Sequence[float]], path: str, title: str, xlabel: str, ylabel: str,
                bars: bool = False, tick_labels: Optional[Sequence[str]] = None) -> None:
    """Lines (or grouped bars) of ``name -> values`` at positions 1..n into a PNG.

    Args:
        series: one line (or bar of each group) per name; NaN values are left out of lines and drawn as 0 bars.
        path: the PNG to write.
        title, xlabel, ylabel: the chart's texts.
        bars: grouped bars instead of lines.
        tick_labels: names of the positions 1..n (rotated), instead of numbers.
    """
    length = max((len(values) for values in series.values()), default=0)
    fig = Figure(figsize=(12, 4) if tick_labels is not None else (9, 5))
    ax = fig.subplots()
    width = 0.8 / max(len(series), 1)
    for index, (name, values) in enumerate(series.items()):
        values = np.asarray(values, dtype=np.float64)
        positions = np.arange(1, len(values) + 1)
        if bars:
            ax.bar(positions + (index - (len(series) - 1) / 2) * width, np.nan_to_num(values), width, label=name)
        else:
            ax.plot(positions, values, marker='.', label=name)
    if tick_labels is not None:
        ax.set_xticks(np.arange(1, length + 1))
        ax.set_xticklabels(tick_labels, rotation=45, ha='right')
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
