"""Resume with the random streams where they were: a resumed run repeats the uninterrupted one exactly."""
import random
from typing import List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

CHECKPOINT_KEY = 'rng_state'


def capture_random_state() -> dict:
    """Python's, NumPy's and torch's (CPU and CUDA) global random states, as tensors, lists and numbers only, so
    the checkpoint still loads with ``torch.load(weights_only=True)``."""
    version, python_state, gauss = random.getstate()
    numpy_state = np.random.get_state(legacy=False)
    state = {
        'python': [version, list(python_state), gauss],
        'numpy': {'key': torch.from_numpy(numpy_state['state']['key'].astype(np.int64)),
                  'pos': int(numpy_state['state']['pos']), 'has_gauss': int(numpy_state['has_gauss']),
                  'gauss': float(numpy_state['gauss'])},
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_random_state(state: dict) -> None:
    """Undo :func:`capture_random_state`."""
    version, python_state, gauss = state['python']
    random.setstate((version, tuple(python_state), gauss))
    numpy_state = state['numpy']
    np.random.set_state({'bit_generator': 'MT19937',
                         'state': {'key': numpy_state['key'].numpy().astype(np.uint32), 'pos': numpy_state['pos']},
                         'has_gauss': numpy_state['has_gauss'], 'gauss': numpy_state['gauss']})
    torch.set_rng_state(state['torch'].cpu())
    cuda = state.get('cuda')
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([item.cpu() for item in cuda])


class _RestoreBeforeFetch:
    """Wraps ``IterBasedTrainLoop.dataloader_iterator``: lets the loop's fast-forward over already-trained batches
    pass, then restores the random state just before the first new batch is drawn (with ``num_workers=0`` the
    data transforms draw from the global NumPy stream in this process), and unwraps itself."""

    def __init__(self, loop, skip: int, state: dict) -> None:
        self.loop, self.iterator, self.skip, self.state = loop, loop.dataloader_iterator, skip, state

    def __iter__(self):
        return self

    def __next__(self):
        if self.skip > 0:
            self.skip -= 1
            return next(self.iterator)
        restore_random_state(self.state)
        self.loop.dataloader_iterator = self.iterator
        return next(self.iterator)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the global random states (Python, NumPy, torch CPU/CUDA; every rank's) in each checkpoint and restore
    them when training resumes, so a run interrupted at a checkpoint and resumed with ``--resume`` gives the same
    weights as the uninterrupted run (with ``randomness=dict(seed=..., deterministic=True)``).

    MMEngine restores the iteration, the optimizer, the schedulers, the message hub and the data order (its
    ``IterBasedTrainLoop`` replays the sampler up to the checkpoint) but re-seeds the global random streams, so
    dropout masks and, with ``num_workers=0``, data augmentation would differ after a resume.

    Validation runs with the training streams saved and put back afterwards, so the checkpoint written just before
    a validation holds the state the next training iteration starts from, and ``val_interval`` never changes
    training. A checkpoint from a different number of processes resumes with fresh streams (a warning says so);
    a checkpoint without the state (older runs) resumes as MMEngine does by default.
    """

    priority = 'LOW'  # after_train_iter before CheckpointHook (VERY_LOW)

    def __init__(self) -> None:
        self._gathered: Optional[List[dict]] = None
        self._pending: Optional[dict] = None
        self._before_val: Optional[dict] = None

    # --- saving -------------------------------------------------------------------------------------------------

    @staticmethod
    def _checkpoint_due(runner) -> bool:
        """Whether a CheckpointHook saves after this iteration (the decision its ``after_train_iter`` makes)."""
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook) and not hook.by_epoch and (
                    hook.every_n_train_iters(runner, hook.interval, hook.save_begin)
                    or (hook.save_last and hook.is_last_train_iter(runner))):
                return True
        return False

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        # Only rank 0 writes checkpoints; every rank's state is gathered (a collective, so all ranks take part)
        # at the iterations where a checkpoint follows.
        if get_world_size() > 1 and self._checkpoint_due(runner):
            self._gathered = all_gather_object(capture_random_state())

    def after_train_epoch(self, runner) -> None:
        if get_world_size() > 1:
            self._gathered = all_gather_object(capture_random_state())

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        states = self._gathered if get_world_size() > 1 else [capture_random_state()]
        if states is not None:
            checkpoint[CHECKPOINT_KEY] = {'world_size': len(states), 'ranks': states}

    # --- resuming -----------------------------------------------------------------------------------------------

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        saved = checkpoint.get(CHECKPOINT_KEY)
        if saved is None:
            self._pending = None
            return
        if saved['world_size'] != get_world_size():
            print_log(f'the checkpoint holds the random states of {saved["world_size"]} processes, this run has '
                      f'{get_world_size()}: the random streams restart from the seed', logger='current', level=30)
            self._pending = None
            return
        self._pending = saved['ranks'][get_rank()]

    def before_train_epoch(self, runner) -> None:
        # load_from (fine-tuning) also calls after_load_checkpoint; only a resumed run continues the streams
        if self._pending is None or (runner.iter == 0 and runner.epoch == 0):
            self._pending = None
            return
        loop = runner.train_loop
        if hasattr(loop, 'dataloader_iterator'):
            # IterBasedTrainLoop fast-forwards its data iterator by loop.iter batches after this hook
            loop.dataloader_iterator = _RestoreBeforeFetch(loop, loop.iter, self._pending)
        else:
            restore_random_state(self._pending)
        print_log(f'resumed the random states saved at iteration {runner.iter}', logger='current')
        self._pending = None

    # --- validation leaves the training streams alone -------------------------------------------------------------

    def before_val(self, runner) -> None:
        self._before_val = capture_random_state()

    def after_val(self, runner) -> None:
        if self._before_val is not None:
            restore_random_state(self._before_val)
            self._before_val = None
