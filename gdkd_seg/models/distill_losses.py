"""The distillation losses of a distiller: built from ``name -> config``, computed with their parts for the log.

Shared by ``SegDistiller`` and ``ClsDistiller``, so both name and log their losses the same way.
"""
from typing import Dict, Optional

from mmengine.registry import Registry
from torch import Tensor, nn


def build_distill_losses(distill_losses: Optional[Dict[str, dict]], registry: Registry) -> nn.ModuleDict:
    """Build ``name -> loss config`` into a ``ModuleDict``.

    Raises:
        ValueError: when a name does not start with ``loss`` (MMEngine would not add it to the optimised total).
    """
    distill_losses = distill_losses or {}
    for name in distill_losses:
        if not name.startswith('loss'):
            raise ValueError(f"distill_losses key {name!r} must start with 'loss' (MMEngine sums only keys "
                             "containing 'loss'), e.g. 'loss_gdkd'")
    return nn.ModuleDict({name: registry.build(cfg) for name, cfg in distill_losses.items()})


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
