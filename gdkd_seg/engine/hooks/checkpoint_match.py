"""Refuse to evaluate a checkpoint that is not of the model being tested (``tools/test.py``)."""
import re

from mmengine.hooks import Hook
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.registry import HOOKS

from ...checkpoint.matching import check_state_dict_matches


@HOOKS.register_module()
class CheckpointMatchHook(Hook):
    """Check, when a checkpoint is loaded, that its weights are the model's: the same keys with the same shapes.

    MMEngine loads ``load_from`` with ``strict=False`` and only logs missing keys, so a checkpoint of another model
    (the teacher's with a distillation config, a student of other widths) is evaluated with random weights.

    Args:
        checkpoint: the checkpoint's path, for the message.
        allow_partial: log the mismatch as a warning instead of raising (``--allow-partial``).
    """

    priority = 'LOWEST'  # after any hook that rewrites the loaded checkpoint (e.g. EMA)

    def __init__(self, checkpoint: str, allow_partial: bool = False) -> None:
        self.checkpoint = checkpoint
        self.allow_partial = allow_partial

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if isinstance(model, BaseTTAModel):
            model = model.module
        state_dict = checkpoint.get('state_dict', checkpoint)
        # the key revision Runner.load_checkpoint applies by default
        state_dict = {re.sub(r'^module\.', '', key): value for key, value in state_dict.items()}
        check_state_dict_matches(state_dict, model.state_dict(),
                                 f'checkpoint {self.checkpoint!r} does not match the model of the config',
                                 "Is it a checkpoint of this config (not the teacher's, not a student of other "
                                 'widths)? Pass --allow-partial to evaluate it anyway.', self.allow_partial)
