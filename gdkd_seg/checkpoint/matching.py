"""Whether a checkpoint's weights are those of a model: the check behind the teacher loader, ``tools/test.py`` and
the student export, so that no tool evaluates, distils from or exports random weights silently."""
from typing import List, Mapping

from mmengine.logging import print_log

from ..utils.errors import UserError

MAX_KEYS_SHOWN = 10
# a distiller's checkpoint names its student's weights with this prefix
STUDENT_PREFIX = 'student.'


class CheckpointMismatchError(UserError, RuntimeError):
    """A checkpoint whose weights are not the model's; the message lists the missing, unexpected and mis-shaped
    keys."""


def shown_keys(keys) -> str:
    """``keys`` sorted and comma-separated, the first :data:`MAX_KEYS_SHOWN` of them and how many more."""
    keys = sorted(keys)
    more = f' ... and {len(keys) - MAX_KEYS_SHOWN} more' if len(keys) > MAX_KEYS_SHOWN else ''
    return ', '.join(keys[:MAX_KEYS_SHOWN]) + more


def state_dict_mismatches(state_dict: Mapping, expected: Mapping) -> List[str]:
    """The missing, unexpected and mis-shaped keys of ``state_dict`` against a model's ``expected`` state dict
    (``num_batches_tracked`` counters aside), one line per kind; empty when the weights match.

    Args:
        state_dict: the checkpoint's weights, keys as the model names them.
        expected: ``model.state_dict()``.
    """
    missing = {key for key in expected if key not in state_dict and not key.endswith('num_batches_tracked')}
    unexpected = {key for key in state_dict if key not in expected and not key.endswith('num_batches_tracked')}
    mis_shaped = {f'{key} {tuple(state_dict[key].shape)} != {tuple(value.shape)}'
                  for key, value in expected.items()
                  if key in state_dict and tuple(getattr(state_dict[key], 'shape', ())) != tuple(value.shape)}
    return [f'{name} keys: {shown_keys(keys)}' for name, keys in
            (('missing', missing), ('unexpected', unexpected), ('mis-shaped', mis_shaped)) if keys]


def check_state_dict_matches(state_dict: Mapping, expected: Mapping, what: str, advice: str,
                             allow_partial: bool = False) -> None:
    """Raise when :func:`state_dict_mismatches` finds any (with ``allow_partial``: log them as a warning).

    Args:
        state_dict, expected: as for :func:`state_dict_mismatches`.
        what: the subject of the message, e.g. ``"teacher_ckpt 'x.pth' does not match the teacher config"``.
        advice: the sentence that ends the error (what to check, how to opt out).
        allow_partial: warn instead of raising (the user's opt-out, e.g. ``--allow-partial``).

    Raises:
        CheckpointMismatchError: listing the missing, unexpected and mis-shaped keys.
    """
    problems = state_dict_mismatches(state_dict, expected)
    if not problems:
        return
    if allow_partial:
        print_log(f'{what} (allowed: partial weights); ' + '; '.join(problems), logger='current', level=30)
        return
    raise CheckpointMismatchError(f'{what}; ' + '; '.join(problems) + f'. {advice}')


def student_weights(checkpoint: dict, path: str) -> dict:
    """The student's weights (``student.*`` keys, prefix removed) of a distiller's checkpoint.

    Raises:
        CheckpointMismatchError: when the checkpoint holds none.
    """
    state_dict = checkpoint.get('state_dict', checkpoint)
    weights = {key[len(STUDENT_PREFIX):]: value for key, value in state_dict.items()
               if key.startswith(STUDENT_PREFIX)}
    if not weights:
        raise CheckpointMismatchError(f'{path} holds no {STUDENT_PREFIX}* weights; is it a checkpoint of a '
                                      'distillation config (SegDistiller)?')
    return weights
