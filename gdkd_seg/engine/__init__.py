"""Running the toolkit on MMEngine: what importing changes (:mod:`.patches`), the training hooks (:mod:`.hooks`),
what the tools do to a config before the Runner sees it (:mod:`.runner_setup`), distributed runs on CPUs
(:mod:`.distributed`) and how the tools report a user's mistake (:mod:`.cli`)."""
from . import hooks
from .hooks import CheckpointMatchHook, DistillWarmupHook, NonFiniteLossError, NonFiniteLossHook, RandomStateHook

__all__ = ['CheckpointMatchHook', 'DistillWarmupHook', 'NonFiniteLossError', 'NonFiniteLossHook', 'RandomStateHook',
           'hooks']
