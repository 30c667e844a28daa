"""A distilled student as a plain MMSeg model: a config and a checkpoint that MMSeg loads without gdkd_seg."""
import os.path as osp
from typing import Tuple

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS

from ..utils.config_tree import replace_types
from ..utils.errors import ConfigError, UserError
from ..utils.files import atomic_write
from .loading import load_checkpoint_file
from .matching import check_state_dict_matches, student_weights

CONFIG_NAME, CHECKPOINT_NAME = 'student_config.py', 'student.pth'


class ExportExistsError(UserError, FileExistsError):
    """The output folder already holds an export, and replacing it was not asked for."""


def export_student(config_path: str, checkpoint_path: str, out_dir: str, allow_partial: bool = False,
                   overwrite: bool = False) -> Tuple[str, str]:
    """Write ``out_dir/student_config.py`` and ``out_dir/student.pth``.

    The config is the student's segmentor with the distiller's data preprocessor (what the student was trained
    behind) and the config's data, evaluation and runtime settings. The checkpoint holds the student's weights with
    keys as MMSeg's EncoderDecoder names them, plus the dataset meta: plain tensors only, so
    ``torch.load(weights_only=True)`` and MMSeg's ``tools/test.py`` / ``mmseg.apis.init_model`` read it on any
    torch. The toolkit's ``ClassWeightedCrossEntropyLoss`` becomes MMSeg's ``CrossEntropyLoss`` without class weights
    (MMSeg's own class weights fail on ignored pixels, and the loss plays no part in inference or evaluation), with a
    printed note.

    Each file is written atomically (:func:`gdkd_seg.utils.files.atomic_write`): an interrupted export leaves the
    previous file or none, never a truncated one.

    Args:
        config_path: the distillation config the checkpoint was trained with.
        checkpoint_path: a SegDistiller checkpoint.
        out_dir: the folder to write to.
        allow_partial: export student weights that do not match the config's student, with a warning.
        overwrite: replace the files of an earlier export in ``out_dir``; without it they are refused.

    Returns:
        The paths of the config and the checkpoint written.

    Raises:
        ExportExistsError: (a FileExistsError) when ``out_dir`` already holds either file and ``overwrite`` is not
            set; nothing is written then.
        ConfigError: when the config is not a SegDistiller config.
        CheckpointMismatchError: when the checkpoint holds no student weights, or (unless ``allow_partial``) they
            are not those of the config's student.
    """
    out_config, out_checkpoint = osp.join(out_dir, CONFIG_NAME), osp.join(out_dir, CHECKPOINT_NAME)
    existing = [path for path in (out_config, out_checkpoint) if osp.lexists(path)]
    if existing and not overwrite:
        raise ExportExistsError(f'{out_dir} already holds an export ({", ".join(existing)}); choose another output '
                                'folder, or replace it with --overwrite (overwrite=True)')
    cfg = Config.fromfile(config_path)
    if cfg.model.get('type') != 'SegDistiller':
        raise ConfigError(f'{config_path} is not a distillation config (model.type={cfg.model.get("type")!r}); a '
                          'plain MMSeg config needs no export')
    student = cfg.model.student.to_dict()
    preprocessor = cfg.model.get('data_preprocessor') or cfg.model.student.get('data_preprocessor')
    if preprocessor:
        student['data_preprocessor'] = preprocessor.to_dict()
    student.pop('pretrained', None)
    if replace_types(student, 'ClassWeightedCrossEntropyLoss', 'CrossEntropyLoss', drop=('class_weight',)):
        print("note: the student was trained with gdkd_seg's ClassWeightedCrossEntropyLoss; the exported config "
              "names MMSeg's CrossEntropyLoss without class weights (MMSeg's class weights fail on ignored "
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

    atomic_write(out_checkpoint, lambda file: torch.save({'state_dict': student_state, 'meta': meta}, file))
    atomic_write(out_config, lambda file: file.write(cfg.pretty_text.encode('utf-8')))
    return out_config, out_checkpoint
