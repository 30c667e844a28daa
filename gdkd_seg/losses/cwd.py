"""Channel-wise distillation (Shu et al., ICCV 2021), the baseline MMRazor ships for Cityscapes."""
from typing import Dict, Tuple

from torch import Tensor

from .inputs import check_logits, to_compute_dtype
from .options import check_options


def cwd_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0) -> Tuple[Tensor, Dict]:
    """For each image and class channel, KL between the teacher's and student's spatial softmax at temperature T.

    Spatial distributions span every pixel of a channel, so the ground truth (and ``ignore_index``) plays no part,
    as in the CWD paper.

    Args:
        student_logits: ``(B, C, h, w)``.
        teacher_logits: ``(B, C, H, W)``, resized bilinearly to the student's size.
        temperature: softmax temperature T; the loss is multiplied by T².

    Returns:
        ``(loss, {})``: the KL summed over pixels, averaged over images and channels.
    """
    teacher_logits = check_logits(student_logits, teacher_logits)
    if student_logits.dim() != 4:
        raise ValueError(f'cwd_loss needs (B, C, H, W) logits, got student_logits of shape '
                         f'{tuple(student_logits.shape)}')
    check_options(temperature=temperature)
    student_log_probs = (to_compute_dtype(student_logits).flatten(2) / temperature).log_softmax(2)
    teacher_log_probs = (to_compute_dtype(teacher_logits).flatten(2) / temperature).log_softmax(2)
    kl = (teacher_log_probs.exp() * (teacher_log_probs - student_log_probs)).sum(2)
    return temperature ** 2 * kl.mean(), {}
