"""Tables as the tools print and write them: markdown for people, CSV for programs."""
import csv
from typing import Any, Sequence


def _cell(value: Any, digits: int) -> str:
    if value is None:
        return '-'
    return f'{value:.{digits}f}' if isinstance(value, float) else str(value)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 3) -> str:
    """A markdown table, one line per row, ending with a newline.

    Args:
        header: the column titles.
        rows: the cells; floats are written with ``digits`` decimals, None as ``-``, anything else with ``str``.
        digits: decimals of float cells (format them yourself for another precision per column).
    """
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += [markdown_row(row, digits) for row in rows]
    return '\n'.join(lines) + '\n'


def markdown_row(row: Sequence[Any], digits: int = 3) -> str:
    """One row of :func:`markdown_table`, for tables printed a row at a time."""
    return '| ' + ' | '.join(_cell(value, digits) for value in row) + ' |'


def write_csv(path: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A CSV file with ``header`` and ``rows``; None cells are written empty."""
    with open(path, 'w', newline='', encoding='utf-8') as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows([['' if value is None else value for value in row] for row in rows])
