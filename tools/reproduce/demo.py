"""The demo: the whole toolkit on the embedded toy city, end to end, through the reproduction harness (``make demo``).

    python tools/reproduce/demo.py [--jobs 2] [--seeds 0 1 2] [--work-dir work_dirs/demo]

What it runs and writes: :mod:`gdkd_seg.reproduce.demo`. Interrupted, it continues where it stopped: finished runs
are skipped, an interrupted one is resumed.
"""
import sys

from gdkd_seg.engine.cli import ArgumentParser, run_tool
from gdkd_seg.reproduce.demo import TABLE, DemoFailed, run_demo
from gdkd_seg.reproduce.runs import parse_cfg_options


def main() -> int:
    parser = ArgumentParser(description='Run the GDKD demo on the embedded toy city')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-root', default='data/toy_cityscapes')
    parser.add_argument('--table', default=TABLE, help='the demo table (rows teacher, plain and gdkd are drawn)')
    parser.add_argument('--seeds', type=int, nargs='+', help="the students' seeds (default: the table's, 0 1 2)")
    parser.add_argument('--jobs', type=int, default=2, help='trainings at once, sharing the cores')
    parser.add_argument('--teacher-iters', type=int, help="override the teacher config's iterations")
    parser.add_argument('--student-iters', type=int, help="override the students' iterations")
    parser.add_argument('--pictures', type=int, default=4, help='val images to draw')
    parser.add_argument('--analysis-images', type=int, default=20,
                        help='val images the teacher analysis and the GDKD term maps go over')
    parser.add_argument('--cfg-options', nargs='*', default=[], metavar='KEY=VALUE',
                        help='extra options for every run')
    args = parser.parse_args()
    try:
        written = run_demo(args.work_dir, args.data_root, args.table, args.seeds, args.jobs, args.teacher_iters,
                           args.student_iters, args.pictures, args.analysis_images,
                           parse_cfg_options(args.cfg_options))
    except DemoFailed as failure:
        print(f'[demo] {failure}', file=sys.stderr)
        return 1
    print(f'[demo] wrote {", ".join(written[:5])}, pictures/ and per_class_iou.png')
    return 0


if __name__ == '__main__':
    run_tool(main)
