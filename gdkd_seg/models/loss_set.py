"""A distiller's set of distillation losses: built from ``name -> config``, computed with their parts for the log.

Shared by ``SegDistiller`` and ``ClsDistiller``, so both name and log their losses the same way.
"""
import inspect
from typing import Dict, List, Optional

from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import Registry
from torch import Tensor, nn

from ..losses.modules import DistillLoss
from ..utils.errors import ConfigError, UserError


class UnknownLossTypeError(UserError, KeyError):
    """A distillation loss ``type`` that no registry knows."""


class UnknownLossOptionError(UserError, TypeError):
    """A distillation loss option its class does not take."""


def build_distill_losses(distill_losses: Optional[Dict[str, dict]], registry: Registry) -> nn.ModuleDict:
    """Build ``name -> loss config`` into a ``ModuleDict``.

    Raises:
        ConfigError: when a name does not start with ``loss`` (MMEngine would not add it to the optimised total), or
            an option has a wrong type or value, naming the entry and the option.
        UnknownLossTypeError: (a KeyError) when a loss ``type`` is not registered, naming it and the registered
            distillation losses.
        UnknownLossOptionError: (a TypeError) when a loss config has options its class does not take, naming them
            and the valid ones.
    """
    distill_losses = distill_losses or {}
    for name in distill_losses:
        if not name.startswith('loss'):
            raise ConfigError(f"distill_losses key {name!r} must start with 'loss' (MMEngine sums only keys "
                              "containing 'loss'), e.g. 'loss_gdkd'")
    for name, cfg in distill_losses.items():
        _check_loss_config(name, cfg, registry)
    return nn.ModuleDict({name: _build_loss(name, cfg, registry) for name, cfg in distill_losses.items()})


def _build_loss(name: str, cfg: dict, registry: Registry) -> nn.Module:
    """Build one loss; an invalid option value is reported with the entry it is in."""
    try:
        return registry.build(cfg)
    except ConfigError as err:
        raise ConfigError(f'distill_losses.{name}: {err}') from err


def registered_distill_losses() -> List[str]:
    """Names of the toolkit's registered distillation losses (``GDKDLoss``, ``KDLoss``, ...)."""
    return sorted(name for name, cls in ROOT_MODELS.module_dict.items()
                  if isinstance(cls, type) and issubclass(cls, DistillLoss))


def _check_loss_config(name: str, cfg: dict, registry: Registry) -> None:
    """Name the entry, and list the alternatives, for an unregistered ``type`` or an unknown option."""
    loss_type = cfg.get('type')
    loss_cls = registry.get(loss_type) if isinstance(loss_type, str) else loss_type
    if loss_cls is None:
        raise UnknownLossTypeError(f'distill_losses.{name}: loss type {loss_type!r} is not registered; the registered '
                       f'distillation losses are {", ".join(registered_distill_losses())} (a loss of your own '
                       "needs @MODELS.register_module() and its module in custom_imports)")
    if not isinstance(loss_cls, type):
        return
    parameters = inspect.signature(loss_cls.__init__).parameters
    if any(parameter.kind == parameter.VAR_KEYWORD for parameter in parameters.values()):
        return
    valid = [key for key in parameters if key != 'self']
    unknown = [key for key in cfg if key not in ('type', '_scope_') and key not in valid]
    if unknown:
        raise UnknownLossOptionError(f'distill_losses.{name}: {loss_cls.__name__} has no option(s) '
                        f'{", ".join(map(repr, unknown))}; valid options: {", ".join(valid)}')


def distill_loss_dict(losses: nn.ModuleDict, student_logits: Tensor, teacher_logits: Tensor, gt: Optional[Tensor],
                      prefix: str, factor: float) -> Dict[str, Tensor]:
    """Each loss, times ``factor``, under ``prefix.name``, and its parts under ``prefix.<name without loss_>_<part>``.

    The parts (e.g. ``distill.gdkd_kl_mass``) are detached and contain no ``loss`` in their key, so MMEngine logs
    them without adding them to the optimised total.
    """
    out = {}
    for name, loss in losses.items():
        out[f'{prefix}.{name}'] = factor * loss(student_logits, teacher_logits, gt)
        short = name[len('loss_'):] if name.startswith('loss_') else name[len('loss'):]
        out.update({f'{prefix}.{short}_{part}': value for part, value in loss.parts.items()})
    return out


def check_class_options(losses: nn.ModuleDict, num_classes: int) -> None:
    """Refuse, at build time, a loss whose class-count option (``k`` of the top-k partition, ``k_max``) exceeds the
    number of classes: the loss itself would only fail at the first training step."""
    for name, loss in losses.items():
        options = getattr(loss, 'options', {})
        keys = ['k_max'] + (['k'] if options.get('partition', 'topk') == 'topk' else [])
        for key in keys:
            value = options.get(key)
            if value is not None and value > num_classes:
                raise ConfigError(f'distill_losses.{name}: {key}={value} is larger than the number of classes '
                                  f"C={num_classes} of the student; use {key} <= {num_classes}")
