"""Refuse a checkpoint that is not of the model it is loaded into: ``tools/test.py``'s CHECKPOINT, ``load_from`` and
``--resume`` of ``tools/train.py``."""
import re
from typing import List, Optional

from mmengine.hooks import Hook
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.registry import HOOKS

from ...checkpoint.matching import CheckpointMismatchError, check_state_dict_matches, state_dict_mismatches
from ...checkpoint.saving import find_latest_checkpoint

# what MMEngine's Runner.resume reads from a checkpoint besides the weights
TRAINING_STATE_KEYS = ('meta', 'message_hub')


@HOOKS.register_module()
class CheckpointMatchHook(Hook):
    """Check, when a checkpoint is loaded, that its weights are the model's: the same keys with the same shapes.

    MMEngine loads ``load_from`` with ``strict=False`` and only logs missing keys, so a checkpoint of another model
    (the teacher's with a distillation config, a student of other widths) is evaluated, or trained from, with random
    weights. On a resume (``resume=True`` in the config) the checkpoint must also hold the training state MMEngine
    resumes (``meta``, ``message_hub``), and its optimizer state must fit the run's optimizer: otherwise MMEngine
    fails with a ``KeyError`` or inside the first optimizer step. A resume is never partial.

    Args:
        allow_partial: log a weights mismatch as a warning instead of raising (``--allow-partial``); not for
            resumes.
        partial_action: what ``--allow-partial`` does, for the error (e.g. ``'evaluate it anyway'``).
    """

    priority = 'LOWEST'  # after any hook that rewrites the loaded checkpoint (e.g. EMA)

    def __init__(self, allow_partial: bool = False, partial_action: str = 'use it anyway') -> None:
        self.allow_partial = allow_partial
        self.partial_action = partial_action

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if isinstance(model, BaseTTAModel):
            model = model.module
        state_dict = checkpoint.get('state_dict', checkpoint)
        # the key revision Runner.load_checkpoint applies by default
        state_dict = {re.sub(r'^module\.', '', key): value for key, value in state_dict.items()}
        path = runner.cfg.get('load_from') or find_latest_checkpoint(runner.work_dir)
        if runner.cfg.get('resume'):
            check_resumable(checkpoint, state_dict, model.state_dict(), getattr(runner, 'optim_wrapper', None), path)
            return
        advice = "Is it a checkpoint of this config (not the teacher's, not a student of other widths)?"
        if hasattr(model, 'student') and not any(key.startswith('student.') for key in state_dict):
            advice += (" A distiller's checkpoint holds its student's weights, named student.*: to start the "
                       "student from a segmentor's checkpoint, set model.student.init_cfg=dict(type='Pretrained', "
                       "checkpoint=PATH) instead of load_from.")
        check_state_dict_matches(state_dict, model.state_dict(),
                                 f'checkpoint {path!r} does not match the model of the config',
                                 f'{advice} Pass --allow-partial to {self.partial_action}.', self.allow_partial)


def check_resumable(checkpoint: dict, state_dict: dict, expected: dict, optim_wrapper, path: Optional[str]) -> None:
    """Raise unless ``checkpoint`` is a training checkpoint of this model and optimizer.

    Args:
        checkpoint: the loaded checkpoint.
        state_dict: its weights, keys as the model names them.
        expected: ``model.state_dict()``.
        optim_wrapper: the run's built optimizer wrapper (None: not checked).
        path: the checkpoint's path, for the message.

    Raises:
        CheckpointMismatchError: naming what is missing or differs, and what to do.
    """
    new_run = ('start a new run from its weights in another --work-dir: --cfg-options load_from=PATH, without '
               '--resume')
    missing = [key for key in TRAINING_STATE_KEYS if key not in checkpoint]
    meta = checkpoint.get('meta')
    if missing or not isinstance(meta, dict) or 'iter' not in meta or 'epoch' not in meta:
        keys = ', '.join(sorted(map(str, checkpoint))[:6])
        raise CheckpointMismatchError(
            f'--resume: {path!r} holds weights but no training state (no {", ".join(missing) or "iteration in meta"};'
            f' it holds {keys}): an exported or downloaded weights file, not a checkpoint saved by a training run, '
            f'so there is nothing to resume. To train from it, {new_run}')
    problems = state_dict_mismatches(state_dict, expected)
    if optim_wrapper is not None and 'optimizer' in checkpoint:
        problems += optimizer_mismatches(checkpoint['optimizer'], optim_wrapper)
    if problems:
        raise CheckpointMismatchError(
            f'--resume: {path!r} is not a checkpoint of this model and optimizer; ' + '; '.join(problems)
            + '. A resume continues the same run: resume with the config and --cfg-options the run was started with '
            "(the work dir and the checkpoint's meta['cfg'] keep a copy), or, to train the changed model, "
            f'{new_run} (add --allow-partial to keep the weights that match)')


def optimizer_mismatches(saved: dict, optim_wrapper) -> List[str]:
    """How the optimizer state ``saved`` (an ``OptimWrapper.state_dict()``) does not fit ``optim_wrapper``'s
    optimizer: the optimizer's settings (their names tell SGD from AdamW), the number of parameter groups and of
    parameters per group, and the shapes of per-parameter state (momentum, Adam moments) against the parameters;
    empty when it fits. Wrappers of several optimizers
    (``OptimWrapperDict``) are not checked."""
    optimizer = getattr(optim_wrapper, 'optimizer', None)
    if optimizer is None or not isinstance(saved, dict) or 'param_groups' not in saved:
        return []
    groups = [group['params'] for group in optimizer.param_groups]
    saved_groups = [group.get('params', []) for group in saved['param_groups']]
    settings, saved_settings = ({key for group in param_groups for key in group} - {'params'}
                                for param_groups in (optimizer.param_groups, saved['param_groups']))
    if settings != saved_settings:
        return [f'optimizer settings {sorted(saved_settings - settings)} in the checkpoint, '
                f'{sorted(settings - saved_settings)} in this run (another optimizer type)']
    if [len(group) for group in saved_groups] != [len(group) for group in groups]:
        return [f'optimizer parameters per group: {[len(group) for group in saved_groups]} in the checkpoint, '
                f'{[len(group) for group in groups]} in this run (trainable parameters or parameter groups changed)']
    shapes = {index: tuple(param.shape) for saved_group, group in zip(saved_groups, groups)
              for index, param in zip(saved_group, group)}
    mis_shaped = sorted({f'parameter {index}: {name} {tuple(value.shape)} != {shapes[index]}'
                         for index, state in saved.get('state', {}).items() if index in shapes
                         for name, value in state.items()
                         if getattr(value, 'dim', lambda: 0)() > 0 and tuple(value.shape) != shapes[index]})
    return [f'mis-shaped optimizer state: {", ".join(mis_shaped[:5])}'] if mis_shaped else []
