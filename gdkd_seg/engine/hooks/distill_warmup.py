"""Warm-up of the distillation losses: a factor on every distillation loss weight, ramped from small to 1."""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ...utils.errors import ConfigError


@HOOKS.register_module()
class DistillWarmupHook(Hook):
    """Ramp every distillation loss weight up to its configured value, per iteration or per epoch.

    * ``warmup_iters=N``: the factor at iteration i (0-based) is ``min(1, (i + 1) / N)``, a linear ramp.
    * ``warmup_epochs=E``: the factor during epoch e (0-based) is ``min(1, (e + 1) / E)``, constant within an
      epoch: the DKD/GDKD authors' ``min(epoch / WARMUP, 1)`` with their 1-based epochs (mdistiller), so
      ``warmup_epochs=1`` is the full weight from the first step and ``warmup_epochs=20`` starts at 1/20.

    Derived from the iteration or epoch count alone, so a resumed run continues the ramp exactly. Logged as
    ``distill_factor``.

    Args:
        warmup_iters: iterations of a linear ramp; 0 disables it.
        warmup_epochs: epochs of an epoch-wise ramp (epoch-based training loops only). Give one of the two.
    """

    priority = 'NORMAL'

    def __init__(self, warmup_iters: Optional[int] = None, warmup_epochs: Optional[int] = None) -> None:
        if (warmup_iters is None) == (warmup_epochs is None):
            raise ConfigError('DistillWarmupHook takes one of warmup_iters (a linear ramp per iteration) or '
                              f'warmup_epochs (per epoch, as the DKD/GDKD authors), got warmup_iters={warmup_iters}, '
                              f'warmup_epochs={warmup_epochs}')
        for name, value in (('warmup_iters', warmup_iters), ('warmup_epochs', warmup_epochs)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ConfigError(f'{name} must be an integer >= 0, got {value!r}')
        self.warmup_iters = warmup_iters
        self.warmup_epochs = warmup_epochs

    def factor(self, iteration: int, epoch: int = 0) -> float:
        """The loss-weight factor at 0-based ``iteration`` (``warmup_iters``) or ``epoch`` (``warmup_epochs``)."""
        steps, done = (self.warmup_iters, iteration) if self.warmup_iters is not None else (self.warmup_epochs, epoch)
        return 1.0 if steps == 0 else min(1.0, (done + 1) / steps)

    def before_train(self, runner) -> None:
        if self.warmup_epochs is not None and not getattr(runner.train_loop, 'max_epochs', None):
            raise ConfigError('DistillWarmupHook(warmup_epochs=...) needs an epoch-based train loop '
                              f'(train_cfg.by_epoch=True); this run uses {type(runner.train_loop).__name__}: '
                              'use warmup_iters instead')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'distill_weight_factor'):
            raise TypeError(f'DistillWarmupHook needs a distiller model, got {type(model).__name__}')
        model.distill_weight_factor = self.factor(runner.iter, runner.epoch)
        runner.message_hub.update_scalar('train/distill_factor', model.distill_weight_factor)
