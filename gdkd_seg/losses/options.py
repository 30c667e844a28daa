"""Validation of the distillation losses' options, shared by the loss functions and the registered modules.

A wrong option (``w2='abc'``, ``k=2.5``, ``k=True``, a negative weight) must fail when the loss is built, naming the
option, not at the first training step deep inside the kernel, and never be accepted silently: Python's ``True`` is
an ``int`` and ``'1' > 0`` raises only later, so types are checked explicitly.
"""
import math
import numbers
from typing import Any, Optional

from ..utils.errors import ConfigError

# options that weigh a loss term: real numbers >= 0
WEIGHT_OPTIONS = ('w0', 'w1', 'w2', 'alpha', 'beta', 'gamma', 'entropy_weight', 'loss_weight')
# switches: exactly True or False (a truthy string or 1 is a mistake, not a choice)
BOOL_OPTIONS = ('logit_standardize', 'per_image_intra', 'ignore_incorrect')
# options that count classes: integers >= 1
CLASS_COUNT_OPTIONS = ('k', 'k_max')
PARTITIONS = ('topk', 'topp')


def _describe(value: Any) -> str:
    return f'{value!r} ({type(value).__name__})'


def _check_real(name: str, value: Any) -> float:
    """``value`` as a float when it is a finite real number (not a bool, a string, a tensor...), else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(f'{name} must be a finite number, got {name}={_describe(value)}')
    return float(value)


def _check_option(name: str, value: Any, num_classes: Optional[int]) -> None:
    if name in WEIGHT_OPTIONS:
        if _check_real(name, value) < 0:
            raise ConfigError(f'{name} must be >= 0 (a weight), got {name}={value}')
    elif name == 'temperature':
        if not _check_real(name, value) > 0:
            raise ConfigError(f'temperature must be > 0, got temperature={value}')
    elif name == 'top_p':
        if not 0 < _check_real(name, value) <= 1:
            raise ConfigError(f'top_p must be in (0, 1], got top_p={value}')
    elif name in CLASS_COUNT_OPTIONS:
        if value is None and name == 'k_max':  # no cap
            return
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ConfigError(f'{name} must be an integer, got {name}={_describe(value)}')
        if value < 1:
            raise ConfigError(f'{name} must be >= 1, got {name}={value}')
        if num_classes is not None and value > num_classes:
            raise ConfigError(f'{name}={value} is larger than the number of classes C={num_classes}')
    elif name == 'mass_clamp':
        if value is not None and not 0 < _check_real(name, value) < 0.5:
            raise ConfigError(f'mass_clamp must be None (exact masses) or an eps in (0, 0.5), e.g. '
                              f'1.1920928955078125e-07 (float32 eps, the authors\' clamp), got mass_clamp={value}')
    elif name == 'partition':
        if value not in PARTITIONS:
            raise ConfigError(f"partition must be 'topk' or 'topp', got partition={value!r}")
    elif name == 'ignore_index':
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ConfigError(f'ignore_index must be an integer label, got ignore_index={_describe(value)}')
    elif name in BOOL_OPTIONS:
        if not isinstance(value, bool):
            raise ConfigError(f'{name} must be True or False, got {name}={_describe(value)}')
    elif name == 'loss_name':
        if not isinstance(value, str) or 'loss' not in value:
            raise ConfigError(f"loss_name must be a string containing 'loss' (MMEngine optimises only such keys), "
                              f'got loss_name={_describe(value)}')
    else:
        raise TypeError(f'no validation rule for the loss option {name!r}')


def check_options(num_classes: Optional[int] = None, **options: Any) -> None:
    """Raise a :class:`ConfigError` naming the option for the first invalid one in ``options``.

    Args:
        num_classes: the number of classes C, when known: ``k`` and ``k_max`` may not exceed it.
        **options: loss options by name: the weights ``w0``, ``w1``, ``w2``, ``alpha``, ``beta``, ``gamma``,
            ``entropy_weight``, ``loss_weight`` (finite numbers >= 0), ``temperature`` (> 0), ``top_p`` (in
            (0, 1]), ``k`` (integer >= 1), ``k_max`` (None or integer >= 1), ``partition`` (``'topk'`` /
            ``'topp'``), ``ignore_index`` (integer), the switches ``logit_standardize``, ``per_image_intra``,
            ``ignore_incorrect`` (bools), ``mass_clamp`` (None or a number in (0, 0.5)) and ``loss_name`` (a string
            containing ``loss``).

    Raises:
        ConfigError: (a ValueError) naming the option, its value and what it must be.
        TypeError: for an option name this function has no rule for (a programming error).
    """
    for name, value in options.items():
        _check_option(name, value, num_classes)
