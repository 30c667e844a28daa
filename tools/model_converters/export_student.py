"""Export a distilled student as a plain MMSeg model: a config and a checkpoint that MMSeg loads without gdkd_seg.

    python tools/model_converters/export_student.py CONFIG CHECKPOINT OUT_DIR [--allow-partial] [--overwrite]

Writes ``OUT_DIR/student_config.py`` and ``OUT_DIR/student.pth`` (:func:`gdkd_seg.checkpoint.export.export_student`),
each atomically. A checkpoint whose student weights are not those of the config's student (missing, unexpected or
mis-shaped keys) is refused unless ``--allow-partial``; an OUT_DIR that already holds either file is refused, and
left as it is, unless ``--overwrite``.
"""
from gdkd_seg.checkpoint.export import export_student
from gdkd_seg.engine.cli import ArgumentParser, run_tool


def main() -> None:
    parser = ArgumentParser(description='Export a distilled student as a plain MMSeg model')
    parser.add_argument('config', help='the distillation config the checkpoint was trained with')
    parser.add_argument('checkpoint', help='a SegDistiller checkpoint (e.g. work_dirs/.../iter_40000.pth)')
    parser.add_argument('out_dir', help='folder for student_config.py and student.pth')
    parser.add_argument('--allow-partial', action='store_true', default=False,
                        help="export student weights that do not all match the config's student (missing, "
                        'unexpected or mis-shaped keys), with a warning; refused by default')
    parser.add_argument('--overwrite', action='store_true', default=False,
                        help='replace the student_config.py and student.pth of an earlier export in OUT_DIR; '
                        'without it, an OUT_DIR that holds either file is refused and left as it is')
    args = parser.parse_args()
    for path in export_student(args.config, args.checkpoint, args.out_dir, allow_partial=args.allow_partial,
                               overwrite=args.overwrite):
        print(f'wrote {path}')


if __name__ == '__main__':
    run_tool(main)
