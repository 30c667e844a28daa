"""The heads of an MMSeg segmentor (EncoderDecoder or CascadeEncoderDecoder) and their logits, whatever their number:
what the distiller and the analysis tools read from a student or a teacher."""
from typing import List, Optional, Tuple

from torch import Tensor, nn


def _heads(head: Optional[nn.Module]) -> List[nn.Module]:
    """A head attribute as a list: none, one head, or a ``ModuleList`` of heads."""
    if head is None:
        return []
    return list(head) if isinstance(head, nn.ModuleList) else [head]


def auxiliary_heads(segmentor: nn.Module) -> List[nn.Module]:
    """A segmentor's auxiliary heads, in order; none when it has none (MMSeg's EncoderDecoder then has no
    ``auxiliary_head`` attribute at all)."""
    return _heads(getattr(segmentor, 'auxiliary_head', None))


def decode_heads(segmentor: nn.Module) -> List[nn.Module]:
    """A segmentor's decode heads: one, or a cascade's stages in order."""
    return _heads(segmentor.decode_head)


def prediction_head(segmentor: nn.Module) -> nn.Module:
    """The decode head that makes a segmentor's prediction: its decode head, or a cascade's last stage."""
    return decode_heads(segmentor)[-1]


def head_logits(segmentor: nn.Module, features: List[Tensor],
                with_aux: bool = True) -> Tuple[List[Tensor], List[Tensor]]:
    """The logits of a segmentor's heads on its backbone (and neck) features.

    Args:
        segmentor: an MMSeg EncoderDecoder, or a CascadeEncoderDecoder whose decode stages each read the previous
            stage's logits (e.g. OCRNet).
        features: ``segmentor.extract_feat(inputs)``.
        with_aux: also compute the auxiliary heads' logits.

    Returns:
        ``(decode, aux)``: the logits of each decode stage in order (one for an EncoderDecoder; the last is the
        prediction) and of each auxiliary head (empty without ``with_aux`` or auxiliary heads).
    """
    first, *later = decode_heads(segmentor)
    decode = [first(features)]
    for stage in later:
        decode.append(stage(features, decode[-1]))
    aux = [head(features) for head in auxiliary_heads(segmentor)] if with_aux else []
    return decode, aux


def log_names(prefix: str, count: int) -> List[str]:
    """Log prefixes of ``count`` heads as MMSeg names them: ``prefix`` for one head, ``prefix_<i>`` for several."""
    return [prefix] if count == 1 else [f'{prefix}_{index}' for index in range(count)]
