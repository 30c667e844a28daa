"""Train and evaluate every config of a table over seeds, and tabulate the mean ± std with the delta to the
no-distillation baseline (the table format: ``gdkd_seg/reproduce/table.py``).

    python tools/reproduce/run_table.py configs/reproduce/cityscapes.yaml --launcher pytorch --gpus 8
    python tools/reproduce/run_table.py configs/reproduce/cityscapes.yaml --launcher slurm --partition gpu --gpus 8
    python tools/reproduce/run_table.py TABLE --jobs 2            # local single-process runs, two at a time
    python tools/reproduce/run_table.py TABLE --dry-run           # print the commands, run nothing

Each (row, seed) lives in ``<out>/<row>/seed<k>/``; a rerun skips finished runs and resumes interrupted ones. The
summary is written to ``<out>/table.md``, ``table.csv`` and ``table.png`` (also after failures, from what finished).
"""
import os.path as osp
import sys

from gdkd_seg.engine.cli import ArgumentParser, run_tool
from gdkd_seg.reproduce import Launcher, dry_run, execute, load_table, write_report
from gdkd_seg.reproduce.runs import parse_cfg_options


def main() -> int:
    parser = ArgumentParser(description='Run a table of configs over seeds and tabulate the results')
    parser.add_argument('table', help='the table file (YAML)')
    parser.add_argument('--out', help='folder of the runs and the summary (default: work_dirs/reproduce/<table name>)')
    parser.add_argument('--seeds', type=int, nargs='+', help="replace the table's seeds (rows with their own keep "
                        'theirs)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='none: one process per run (python tools/train.py); pytorch: tools/dist_train.sh on '
                        '--gpus GPUs; slurm: tools/slurm_train.sh on --gpus GPUs of --partition')
    parser.add_argument('--gpus', type=int, default=1, help='GPUs per training run (pytorch, slurm)')
    parser.add_argument('--gpus-per-node', type=int, default=8, help='slurm: GPUs of one node')
    parser.add_argument('--partition', help='slurm: the partition')
    parser.add_argument('--jobs', type=int, default=1, help='runs at once (none: local processes sharing the cores; '
                        'slurm: concurrent jobs; pytorch: 1)')
    parser.add_argument('--dry-run', action='store_true', help='print the commands that would run, run nothing')
    parser.add_argument('--report-only', action='store_true', help='only write the summary of the finished runs')
    parser.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help="options added to every run, after the table's")
    args = parser.parse_args()
    out = args.out or osp.join('work_dirs', 'reproduce', osp.splitext(osp.basename(args.table))[0])
    extra = parse_cfg_options(args.cfg_options)
    table = load_table(args.table, args.seeds)
    launcher = Launcher(args.launcher, args.gpus, args.partition, args.gpus_per_node)
    if args.dry_run:
        print('\n'.join(dry_run(table, out, launcher, extra)))
        return 0
    failures = [] if args.report_only else execute(table, out, launcher, args.jobs, extra)
    paths = write_report(table, out)
    print(f'[reproduce] wrote {paths["markdown"]}, {paths["csv"]} and {paths["chart"]}')
    if failures:
        print('[reproduce] failed runs (rerun the same command to retry them; finished runs are skipped):\n' +
              '\n'.join(f'  {failure}' for failure in failures), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    run_tool(main)
