"""What does the teacher know? Its predictive distribution over a split, per ground-truth class.

    python tools/analysis_tools/analyze_teacher.py CONFIG [CHECKPOINT] [--split val|train] [--max-images N]
        [--out DIR] [--pictures N] [--k K] [--temperature T] [--device cuda|cpu] [--cfg-options ...]

CONFIG is an MMSeg segmentor config with CHECKPOINT as its weights, or a distillation config: then its teacher, with
CHECKPOINT as its weights or, when omitted, ``model.teacher_ckpt``, and ``k`` / ``temperature`` of its GDKDLoss.
Weights load strictly and safely (a checkpoint of another model is refused). What it writes:
:func:`gdkd_seg.analysis.teacher_report.analyze_teacher`.
"""
from mmengine.config import DictAction
from mmengine.registry import init_default_scope

from gdkd_seg.analysis.builders import default_device
from gdkd_seg.analysis.teacher_report import analyze_teacher
from gdkd_seg.engine.cli import ArgumentParser, run_tool
from gdkd_seg.engine.runner_setup import load_config


def main() -> None:
    parser = ArgumentParser(description="Analyse a teacher's predictive distribution over a split")
    parser.add_argument('config', help='an MMSeg segmentor config or a distillation config (its teacher)')
    parser.add_argument('checkpoint', nargs='?',
                        help="the segmentor's weights; for a distillation config default model.teacher_ckpt")
    parser.add_argument('--split', choices=('val', 'train'), default='val',
                        help='the images analysed, through the test pipeline (default val)')
    parser.add_argument('--max-images', type=int, help='analyse only the first N images')
    parser.add_argument('--out', default='work_dirs/analyze_teacher', help='folder for the table, plots, pictures')
    parser.add_argument('--pictures', type=int, default=4, help='images drawn as panels (default 4)')
    parser.add_argument('--k', type=int, help="k of the top-k mass map (default: the config's GDKDLoss k, else 3)")
    parser.add_argument('--temperature', type=float,
                        help="softmax temperature (default: the config's GDKDLoss temperature, else 1)")
    parser.add_argument('--device', default=default_device(), help='cuda when available, else cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override settings in the config')
    args = parser.parse_args()
    cfg = load_config(args.config, args.cfg_options, work_dir=args.out)
    init_default_scope(cfg.get('default_scope', 'mmseg'))  # this process builds the config's modules by name
    table, reasoning = analyze_teacher(cfg, args.checkpoint, args.out, args.split, args.max_images, args.pictures,
                                       args.k, args.temperature, args.device)
    print(table)
    print(reasoning)
    print(f'wrote {args.out}: per_class.md, per_class.csv, cumulative_mass.png, top_p_set_sizes.png, '
          'recommendation.txt, pictures/')


if __name__ == '__main__':
    run_tool(main)
