"""Training hooks of the toolkit, registered in MMEngine's root ``HOOKS``."""
from .checkpoint_match import CheckpointMatchHook
from .distill_warmup import DistillWarmupHook
from .non_finite_loss import NonFiniteLossError, NonFiniteLossHook
from .random_state import RandomStateHook

__all__ = ['CheckpointMatchHook', 'DistillWarmupHook', 'NonFiniteLossError', 'NonFiniteLossHook', 'RandomStateHook']
