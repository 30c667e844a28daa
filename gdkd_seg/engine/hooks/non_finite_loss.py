"""Stop training at the first non-finite loss, naming the iteration and the loss terms, before the weights change."""
import math
from typing import Dict

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


class NonFiniteLossError(FloatingPointError):
    """A loss term was NaN or infinite; raised before the optimizer step of that iteration."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Raise :class:`NonFiniteLossError` when any loss term of an iteration is NaN or infinite.

    MMEngine would step the optimizer with the NaN gradients and carry on, logging ``loss: nan`` while every weight
    becomes NaN (and checkpoints keep being written). This hook checks the model's loss dict as MMEngine sums it
    (``parse_losses``), so the error comes before ``backward`` and the optimizer step: the weights, and the last
    checkpoint, stay those of the previous iteration. The message names the iteration (1-based, as in the log) and
    every non-finite term, e.g. ``distill.loss_gdkd``.

    One extra host synchronisation per iteration (all terms are checked at once). The configs enable it in
    ``default_hooks`` as ``non_finite_loss``; opt out with
    ``--cfg-options default_hooks.non_finite_loss.enabled=False`` (MMEngine accepts ``None`` only for its own
    default hooks).

    Args:
        enabled: False turns the check off.
    """

    priority = 'VERY_HIGH'

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._model = None

    def before_train(self, runner) -> None:
        if not self.enabled:
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        parse_losses = model.parse_losses  # the bound method; the DDP wrapper also calls module.parse_losses

        def checked_parse_losses(losses: Dict[str, torch.Tensor]):
            loss, log_vars = parse_losses(losses)
            self.check(log_vars, runner.iter + 1)
            return loss, log_vars

        model.parse_losses = checked_parse_losses
        self._model = model

    def after_train(self, runner) -> None:
        if self._model is not None:
            del self._model.parse_losses  # the class's method again
            self._model = None

    @staticmethod
    def check(log_vars: Dict[str, torch.Tensor], iteration: int) -> None:
        """Raise when a loss term (a key containing ``loss``: what MMEngine sums and optimises) is not finite.

        Other logged values (accuracies, loss parts) never stop training, but non-finite ones are named too.
        """
        losses = {name: value for name, value in log_vars.items() if 'loss' in name and torch.is_tensor(value)}
        if not losses or bool(torch.stack([value.detach().float().sum() for value in losses.values()])
                              .isfinite().all()):
            return
        values = {name: float(value.detach().float().sum()) for name, value in log_vars.items()
                  if torch.is_tensor(value)}
        bad_terms = [name for name in losses if name != 'loss' and not math.isfinite(values[name])] or ['loss']
        others = [name for name, value in values.items() if name not in losses and not math.isfinite(value)]
        shown = ', '.join(f'{name}={values[name]}' for name in bad_terms)
        also = f' (other non-finite logged values: {", ".join(others)})' if others else ''
        raise NonFiniteLossError(
            f'non-finite loss at iteration {iteration}: {shown}{also}. Training stopped before the optimizer step, '
            f'so the weights are those after iteration {iteration - 1}. Check the learning rate, the inputs and '
            'the teacher checkpoint (NaN teacher weights give NaN distillation losses); to train on regardless, '
            'set default_hooks.non_finite_loss.enabled=False.')
