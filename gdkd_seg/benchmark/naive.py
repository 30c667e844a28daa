"""GDKD written the naive way, as reference code usually writes it: the one reference the loss benchmark compares
against and the tests use to show where it breaks."""
import torch
import torch.nn.functional as F


def naive_gdkd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, k: int = 3, w0: float = 1.0,
               w1: float = 1.0, w2: float = 2.0, temperature: float = 1.0) -> torch.Tensor:
    """GDKD with boolean top-k masks, the two group probabilities summed from the softmax and logged, and the
    within-group distributions as log-softmaxes with the other group pushed down by subtracting 1000; mean over all
    pixels. Right on tame logits; inf or NaN where a group's summed probability underflows (a confident teacher).
    """
    T = temperature
    C = student_logits.shape[1]
    if student_logits.dim() == 4:
        student_logits = student_logits.permute(0, 2, 3, 1).reshape(-1, C)
        teacher_logits = teacher_logits.permute(0, 2, 3, 1).reshape(-1, C)
    top_mask = torch.zeros_like(teacher_logits, dtype=torch.bool).scatter_(
        1, teacher_logits.topk(k, dim=1).indices, True)
    other_mask = ~top_mask
    p_student = F.softmax(student_logits / T, dim=1)
    p_teacher = F.softmax(teacher_logits / T, dim=1)
    b_student = torch.stack([(p_student * top_mask).sum(1), (p_student * other_mask).sum(1)], dim=1)
    b_teacher = torch.stack([(p_teacher * top_mask).sum(1), (p_teacher * other_mask).sum(1)], dim=1)
    kl_mass = F.kl_div(torch.log(b_student), b_teacher, reduction='none').sum(1)
    log_top_student = F.log_softmax(student_logits / T - 1000.0 * other_mask, dim=1)
    log_top_teacher = F.log_softmax(teacher_logits / T - 1000.0 * other_mask, dim=1)
    kl_top = F.kl_div(log_top_student, log_top_teacher, reduction='none', log_target=True).sum(1)
    log_other_student = F.log_softmax(student_logits / T - 1000.0 * top_mask, dim=1)
    log_other_teacher = F.log_softmax(teacher_logits / T - 1000.0 * top_mask, dim=1)
    kl_other = F.kl_div(log_other_student, log_other_teacher, reduction='none', log_target=True).sum(1)
    return T ** 2 * (w0 * kl_mass + w1 * kl_top + w2 * kl_other).mean()
