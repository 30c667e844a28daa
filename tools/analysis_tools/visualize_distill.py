"""Where does the student still disagree with the teacher? Per-pixel maps of the three GDKD terms.

    python tools/analysis_tools/visualize_distill.py CONFIG STUDENT_CKPT [--split val|train] [--max-images N]
        [--out DIR] [--pictures N] [--device cuda|cpu] [--cfg-options ...]

CONFIG is a distillation config: its teacher comes from ``model.teacher`` / ``model.teacher_ckpt``, the student's
weights from STUDENT_CKPT (a SegDistiller checkpoint; a checkpoint of another student is refused). What it writes:
:func:`gdkd_seg.analysis.term_maps.map_gdkd_terms`.
"""
from mmengine.config import DictAction
from mmengine.registry import init_default_scope

from gdkd_seg.analysis.builders import default_device
from gdkd_seg.analysis.term_maps import map_gdkd_terms
from gdkd_seg.engine.cli import ArgumentParser, run_tool
from gdkd_seg.engine.runner_setup import load_config


def main() -> None:
    parser = ArgumentParser(description='Per-pixel maps of the GDKD terms between teacher and student')
    parser.add_argument('config', help='the distillation config the student was trained with')
    parser.add_argument('student_ckpt', help='a SegDistiller checkpoint (e.g. work_dirs/.../iter_40000.pth)')
    parser.add_argument('--split', choices=('val', 'train'), default='val')
    parser.add_argument('--max-images', type=int, help='only the first N images')
    parser.add_argument('--out', default='work_dirs/visualize_distill')
    parser.add_argument('--pictures', type=int, default=4, help='images drawn (default 4)')
    parser.add_argument('--device', default=default_device(), help='cuda when available, else cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override settings in the config')
    args = parser.parse_args()
    cfg = load_config(args.config, args.cfg_options, work_dir=args.out)
    init_default_scope(cfg.get('default_scope', 'mmseg'))  # this process builds the config's modules by name
    table = map_gdkd_terms(cfg, args.student_ckpt, args.out, args.split, args.max_images, args.pictures, args.device)
    print(table)
    print(f'wrote {args.out}: terms.md, pictures/')


if __name__ == '__main__':
    run_tool(main)
