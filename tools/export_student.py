"""Export a distilled student as a plain MMSeg model: a config and a checkpoint that MMSeg loads without gdkd_seg.

    python tools/export_student.py CONFIG CHECKPOINT OUT_DIR [--allow-partial]

Writes ``OUT_DIR/student_config.py`` (the student's segmentor with the distiller's data preprocessor, and the
config's data, evaluation and runtime settings) and ``OUT_DIR/student.pth`` (the student's weights with keys as
MMSeg's EncoderDecoder names them, plus the dataset meta; plain tensors only, so ``torch.load(weights_only=True)``
and MMSeg's ``tools/test.py`` / ``mmseg.apis.init_model`` read it on any torch). A checkpoint whose student weights
are not those of the config's student (missing, unexpected or mis-shaped keys) is refused unless
``--allow-partial``. The toolkit's ``ClassWeightedCrossEntropyLoss`` (the demo's training loss) becomes MMSeg's
``CrossEntropyLoss`` without class weights, with a printed note: MMSeg's own class weights fail on ignored pixels,
and the loss plays no part in inference or evaluation.
"""
import argparse
import os
import os.path as osp

import torch

import gdkd_seg  # noqa: F401  (registers the toolkit)
from gdkd_seg.checkpoint_loading import load_checkpoint_file
from gdkd_seg.inspection import student_weights
from gdkd_seg.state_dict_match import check_state_dict_matches
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS


def to_mmseg_losses(node) -> int:
    """Turn every ``ClassWeightedCrossEntropyLoss`` in a config tree into MMSeg's unweighted ``CrossEntropyLoss``,
    in place; returns how many were turned."""
    turned = 0
    if isinstance(node, dict):
        if node.get('type') == 'ClassWeightedCrossEntropyLoss':
            node['type'] = 'CrossEntropyLoss'
            node.pop('class_weight', None)
            turned += 1
        children = node.values()
    elif isinstance(node, (list, tuple)):
        children = node
    else:
        return 0
    return turned + sum(to_mmseg_losses(child) for child in children)


def export_student(config_path: str, checkpoint_path: str, out_dir: str, allow_partial: bool = False) -> tuple:
    """Write the student's config and checkpoint; returns their paths.

    Args:
        allow_partial: export student weights that do not match the config's student, with a warning.

    Raises:
        ValueError: when the config is not a SegDistiller config or the checkpoint holds no student weights.
        RuntimeError: when the student weights do not match the config's student (unless ``allow_partial``).
    """
    cfg = Config.fromfile(config_path)
    if cfg.model.get('type') != 'SegDistiller':
        raise ValueError(f'{config_path} is not a distillation config (model.type={cfg.model.get("type")!r}); '
                         'a plain MMSeg config needs no export')
    student = cfg.model.student.to_dict()
    # the distiller's preprocessor (by default the student's own) is what the student was trained behind
    preprocessor = cfg.model.get('data_preprocessor') or cfg.model.student.get('data_preprocessor')
    if preprocessor:
        student['data_preprocessor'] = preprocessor.to_dict()
    student.pop('pretrained', None)
    if to_mmseg_losses(student):
        print('note: the student was trained with gdkd_seg\'s ClassWeightedCrossEntropyLoss; the exported config '
              'names MMSeg\'s CrossEntropyLoss without class weights (MMSeg\'s class weights fail on ignored '
              'pixels); inference and evaluation do not use it')
    cfg.model = student
    cfg.pop('custom_imports', None)
    cfg.custom_hooks = [hook for hook in cfg.get('custom_hooks', []) if hook.get('type') != 'DistillWarmupHook']

    checkpoint = load_checkpoint_file(checkpoint_path, setting='the CHECKPOINT argument')
    student_state = student_weights(checkpoint, checkpoint_path)
    with DefaultScope.overwrite_default_scope('mmseg'):
        expected = MODELS.build(student).state_dict()
    check_state_dict_matches(student_state, expected, f'{checkpoint_path} does not match the student of {config_path}',
                             'Is it a checkpoint of this config (not a student of other widths)? Pass '
                             '--allow-partial to export it anyway.', allow_partial)
    meta = {'dataset_meta': checkpoint.get('meta', {}).get('dataset_meta', {}),
            'exported_from': osp.abspath(checkpoint_path)}

    os.makedirs(out_dir, exist_ok=True)
    out_config, out_checkpoint = osp.join(out_dir, 'student_config.py'), osp.join(out_dir, 'student.pth')
    cfg.dump(out_config)
    torch.save({'state_dict': student_state, 'meta': meta}, out_checkpoint)
    return out_config, out_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description='Export a distilled student as a plain MMSeg model')
    parser.add_argument('config', help='the distillation config the checkpoint was trained with')
    parser.add_argument('checkpoint', help='a SegDistiller checkpoint (e.g. work_dirs/.../iter_40000.pth)')
    parser.add_argument('out_dir', help='folder for student_config.py and student.pth')
    parser.add_argument('--allow-partial', action='store_true', default=False,
                        help='export student weights that do not all match the config\'s student (missing, '
                             'unexpected or mis-shaped keys), with a warning; refused by default')
    args = parser.parse_args()
    for path in export_student(args.config, args.checkpoint, args.out_dir, args.allow_partial):
        print(f'wrote {path}')


if __name__ == '__main__':
    main()
