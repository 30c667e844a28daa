"""Training hooks of the toolkit, registered in MMEngine's root ``HOOKS``."""
from .distill_warmup import DistillWarmupHook
from .non_finite_loss import NonFiniteLossError, NonFiniteLossHook
from .random_state import RandomStateHook

__all__ = ['DistillWarmupHook', 'NonFiniteLossError', 'NonFiniteLossHook', 'RandomStateHook']
