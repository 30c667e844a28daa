"""Training hooks of the toolkit, registered in MMEngine's root ``HOOKS``."""
from .distill_warmup import DistillWarmupHook

__all__ = ['DistillWarmupHook']
