"""Linear warm-up of the distillation losses."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class DistillWarmupHook(Hook):
    """Ramp every distillation loss weight linearly from 0 to its configured value over ``warmup_iters``.

    The factor at iteration i (0-based) is ``min(1, (i + 1) / warmup_iters)``: derived from the iteration count
    alone, so a resumed run continues the ramp exactly. It is logged as ``distill_factor``.

    Args:
        warmup_iters: iterations of the ramp; 0 disables it.
    """

    priority = 'NORMAL'

    def __init__(self, warmup_iters: int) -> None:
        if warmup_iters < 0:
            raise ValueError(f'warmup_iters must be >= 0, got {warmup_iters}')
        self.warmup_iters = warmup_iters

    def factor(self, iteration: int) -> float:
        """The loss-weight factor at 0-based ``iteration``."""
        return 1.0 if self.warmup_iters == 0 else min(1.0, (iteration + 1) / self.warmup_iters)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'distill_weight_factor'):
            raise TypeError(f'DistillWarmupHook needs a distiller model, got {type(model).__name__}')
        model.distill_weight_factor = self.factor(runner.iter)
        runner.message_hub.update_scalar('train/distill_factor', model.distill_weight_factor)
