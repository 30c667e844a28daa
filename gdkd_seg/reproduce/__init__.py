"""The reproduction harness behind ``tools/reproduce/run_table.py`` and the demo: a table file of configs and seeds
(:mod:`.table`), each (row, seed) trained and evaluated through the tools (:mod:`.runs`), the summary
(:mod:`.report`), and the demo's report on the toy city (:mod:`.demo`)."""
from .report import RowSummary, collect, summarise, write_report
from .runs import Launcher, Run, RunFailed, dry_run, execute, next_step, runs_of
from .table import Row, Table, TableError, load_table

__all__ = ['Launcher', 'Row', 'RowSummary', 'Run', 'RunFailed', 'Table', 'TableError', 'collect', 'dry_run',
           'execute', 'load_table', 'next_step', 'runs_of', 'summarise', 'write_report']
