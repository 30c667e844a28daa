"""The authors' mass clamp (``mass_clamp=eps``) on GDKD, its top-p and three-group variants and DKD, in the three
implementations, against a float64 reference of the clamped formula written as the authors' code computes it:
probabilities summed per group, clamped to [eps, 1 − eps], logged, with autograd's gradient through the clamp."""
import math

import pytest
import torch
import torch.nn.functional as F

from gdkd_seg.losses import AUTHORS_MASS_CLAMP, DKDLoss, GDKD3Loss, GDKDLoss, dkd_loss, gdkd3_loss, gdkd_loss
from gdkd_seg.utils.errors import ConfigError

pytestmark = pytest.mark.usefixtures('implementation')
EPS = AUTHORS_MASS_CLAMP
IGNORE = 255


def _rows(x):
    return x.movedim(1, -1).reshape(-1, x.shape[1]) if x.dim() == 4 else x


def _group_masks(kind, teacher_rows, labels, T, k, top_p=0.6):
    """``(N, G, C)`` membership of each class in each group, from the teacher's float64 logits (or the labels)."""
    num_rows, num_classes = teacher_rows.shape
    order = teacher_rows.argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(num_classes).expand_as(order))
    if kind == 'gdkd':
        top = rank < k
        return torch.stack([top, ~top], 1)
    if kind == 'gdkd-topp':
        probs = (teacher_rows / T).softmax(1)
        before = probs.gather(1, order).cumsum(1) - probs.gather(1, order)  # mass ranked above each class
        top = (before < top_p).gather(1, rank)
        return torch.stack([top, ~top], 1)
    if kind == 'gdkd3':
        return torch.stack([rank == 0, (rank >= 1) & (rank < k), rank >= k], 1)
    target = F.one_hot(labels.clamp(min=0), num_classes).bool()  # dkd
    return torch.stack([target, ~target], 1)


def authors_clamped_loss(kind, student, teacher, gt, T, weights, mass_weight, eps, k=3):
    """``(loss, mean clamped mass KL, gradient, share of valid pixels clamped)`` in float64."""
    s = _rows(student.detach().double()).requires_grad_()
    t = _rows(teacher.detach().double())
    labels = None if gt is None else gt.reshape(-1)
    valid = torch.ones(len(s), dtype=torch.bool) if labels is None else labels != IGNORE
    masks = _group_masks(kind, t, None if labels is None else torch.where(valid, labels, 0), T, k)
    p_s, p_t = (s / T).softmax(1), (t / T).softmax(1)
    mass_s = (p_s.unsqueeze(1) * masks).sum(2).clamp(eps, 1 - eps)
    mass_t = (p_t.unsqueeze(1) * masks).sum(2).clamp(eps, 1 - eps)
    kl_mass = (mass_t * (mass_t.log() - mass_s.log())).sum(1)
    within = 0.0
    for g, weight in enumerate(weights):
        log_q_s = (s / T).masked_fill(~masks[:, g], -math.inf).log_softmax(1)
        log_q_t = (t / T).masked_fill(~masks[:, g], -math.inf).log_softmax(1)
        terms = torch.where(masks[:, g], log_q_t.exp() * (log_q_t - log_q_s), 0.0)
        within = within + weight * terms.sum(1)
    per_pixel = T * T * (mass_weight * kl_mass + within)
    count = valid.sum().clamp(min=1)
    loss = torch.where(valid, per_pixel, 0.0).sum() / count
    loss.backward()
    raw_s = (p_s.unsqueeze(1) * masks).sum(2).detach()
    clamped = ((raw_s < eps) | (raw_s > 1 - eps)).any(1) & valid
    grad = s.grad.view(*student.shape[:1], *student.shape[2:], student.shape[1]).movedim(-1, 1) \
        if student.dim() == 4 else s.grad
    return (loss.detach(), torch.where(valid, kl_mass, 0.0).sum().detach() / count, grad,
            float(clamped.sum()) / max(int(valid.sum()), 1))


CASES = {
    'gdkd-k1': ('gdkd', dict(k=1), (1.0, 2.0), 1.0),
    'gdkd-k3': ('gdkd', dict(k=3, w0=0.7, w1=1.3, w2=2.0), (1.3, 2.0), 0.7),
    'gdkd-topp': ('gdkd-topp', dict(partition='topp', top_p=0.6), (1.0, 2.0), 1.0),
    'gdkd3': ('gdkd3', dict(k=4, w0=1.5, w1=0.5, w2=2.0), (0.0, 0.5, 2.0), 1.5),
    'dkd': ('dkd', dict(alpha=1.0, beta=2.0), (0.0, 2.0), 1.0),
}


def _call(name, student, teacher, gt, T, mass_clamp):
    kind, options, _, _ = CASES[name]
    if kind == 'dkd':
        return dkd_loss(student, teacher, gt, temperature=T, mass_clamp=mass_clamp, **options)
    if kind == 'gdkd3':
        return gdkd3_loss(student, teacher, gt, temperature=T, mass_clamp=mass_clamp, **options)
    return gdkd_loss(student, teacher, gt, temperature=T, mass_clamp=mass_clamp, **options)


def _inputs(shape, scale, seed, dtype):
    g = torch.Generator().manual_seed(seed)
    student = (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype)
    teacher = (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype)
    label_shape = (shape[0], *shape[2:])
    gt = torch.randint(0, shape[1], label_shape, generator=g)
    gt[torch.rand(label_shape, generator=g) < 0.25] = IGNORE
    return student, teacher, gt


def test_smallest_case_exact_and_clamped():
    """One pixel, GDKD k=1, float32: student [17, 0], teacher [0.1, 0]. The student's rest mass e^-17/(1+e^-17)
    (4e-8) is below float32 eps, so the clamp moves both masses and stops the gradient."""
    b_t = torch.tensor([0.1, 0.0], dtype=torch.float64).softmax(0).tolist()
    b_s = torch.tensor([17.0, 0.0], dtype=torch.float64).softmax(0).tolist()
    exact = sum(t * math.log(t / s) for t, s in zip(b_t, b_s))
    clamped = sum(t * math.log(t / s) for t, s in zip(b_t, (1 - EPS, EPS)))
    assert round(exact, 3) == 7.383 and round(clamped, 3) == 6.881
    for mass_clamp, value, grad in ((None, exact, [b_s[0] - b_t[0], b_s[1] - b_t[1]]), (EPS, clamped, [0.0, 0.0])):
        student = torch.tensor([[17.0, 0.0]], requires_grad=True)
        loss, parts = gdkd_loss(student, torch.tensor([[0.1, 0.0]]), None, k=1, mass_clamp=mass_clamp)
        loss.backward()
        assert loss.item() == pytest.approx(value, rel=1e-6) and float(parts['kl_mass']) == pytest.approx(value,
                                                                                                           rel=1e-6)
        torch.testing.assert_close(student.grad[0], torch.tensor(grad), rtol=1e-5, atol=1e-7)
    assert [round(x, 3) for x in grad] == [0.0, 0.0] and round(b_s[0] - b_t[0], 3) == 0.475


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32], ids=['float64', 'float32'])
@pytest.mark.parametrize('scale', [1.0, 5.0, 20.0], ids=['x1', 'x5', 'x20'])
@pytest.mark.parametrize('name', list(CASES))
def test_clamped_losses_match_the_authors_formula(name, scale, dtype):
    kind, _, weights, mass_weight = CASES[name]
    shape = (2, 19, 5, 6) if kind != 'dkd' else (60, 19)
    student, teacher, gt = _inputs(shape, scale, seed=len(name) + int(scale), dtype=dtype)
    if len(shape) == 2:
        gt = gt.reshape(-1)
    for T in (1.0, 2.0):
        ref_loss, ref_kl_mass, ref_grad, clamped_share = authors_clamped_loss(
            kind, student, teacher, gt, T, weights, mass_weight, EPS, k=CASES[name][1].get('k', 3))
        x = student.detach().clone().requires_grad_()
        loss, parts = _call(name, x, teacher, gt, T, EPS)
        loss.backward()
        rtol = 1e-10 if dtype == torch.float64 else 2e-5
        torch.testing.assert_close(loss.double(), ref_loss, rtol=rtol, atol=rtol)
        torch.testing.assert_close(parts['kl_mass'].double(), ref_kl_mass, rtol=rtol, atol=rtol * 10)
        torch.testing.assert_close(x.grad.double(), ref_grad, rtol=1e-4 if dtype == torch.float32 else 1e-9,
                                   atol=1e-7 if dtype == torch.float32 else 1e-13)
        if scale == 20.0 and T == 1.0:  # these inputs exercise the clamp
            assert clamped_share > 0.3, clamped_share
            exact = _call(name, student, teacher, gt, T, None)[0]
            assert abs(float(exact) - loss.item()) > 1e-3
        if scale == 1.0:  # nothing is clamped: the clamped loss is the exact one
            assert clamped_share == 0.0
            torch.testing.assert_close(loss, _call(name, student, teacher, gt, T, None)[0], rtol=1e-6, atol=0)


def test_clamp_stops_only_the_clamped_masses_gradient():
    """GDKD3, one pixel: the top-1 mass is near 1 and the rest mass below eps, the middle mass in between. The
    gradient through the middle mass flows; the mass term's gradient is not zero, unlike the two-group case."""
    student = torch.tensor([[20.0, 8.0, 0.0, -30.0]], dtype=torch.float64, requires_grad=True)
    teacher = torch.tensor([[3.0, 2.0, 1.0, -1.0]], dtype=torch.float64)
    loss, _ = gdkd3_loss(student, teacher, None, k=3, w0=1.0, w1=0.0, w2=0.0, mass_clamp=EPS)
    loss.backward()
    ref_loss, _, ref_grad, share = authors_clamped_loss('gdkd3', student, teacher, None, 1.0, (0.0, 0.0, 0.0), 1.0,
                                                        EPS)
    assert share == 1.0 and ref_grad.abs().sum() > 1e-3
    torch.testing.assert_close(loss, ref_loss, rtol=1e-12, atol=0)
    torch.testing.assert_close(student.grad, ref_grad, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize('build', [
    lambda v: GDKDLoss(mass_clamp=v), lambda v: GDKD3Loss(mass_clamp=v), lambda v: DKDLoss(mass_clamp=v)],
    ids=['GDKDLoss', 'GDKD3Loss', 'DKDLoss'])
@pytest.mark.parametrize('value', [0, 0.0, -1e-7, 0.5, 1.0, float('nan'), float('inf'), '1e-7', True])
def test_bad_mass_clamp_refused_at_build(build, value):
    with pytest.raises(ConfigError, match='mass_clamp'):
        build(value)


def test_modules_pass_the_clamp():
    student, teacher, gt = _inputs((2, 19, 3, 4), 20.0, seed=5, dtype=torch.float32)
    for module, fn in ((GDKDLoss(mass_clamp=EPS), lambda m: gdkd_loss(student, teacher, gt, mass_clamp=m)),
                       (DKDLoss(mass_clamp=EPS), lambda m: dkd_loss(student, teacher, gt, beta=8.0, mass_clamp=m)),
                       (GDKD3Loss(mass_clamp=EPS), lambda m: gdkd3_loss(student, teacher, gt, mass_clamp=m))):
        assert 'mass_clamp=' in repr(module)
        torch.testing.assert_close(module(student, teacher, gt), fn(EPS)[0])
        assert not torch.allclose(module(student, teacher, gt), fn(None)[0])


def test_entropy_term_skipped_without_a_valid_pixel():
    """As the authors' code: a batch with no valid pixel contributes 0, the entropy term included."""
    student, teacher, _ = _inputs((2, 19, 3, 4), 3.0, seed=6, dtype=torch.float32)
    student.requires_grad_()
    none_valid = torch.full((2, 3, 4), IGNORE)
    loss, parts = gdkd_loss(student, teacher, none_valid, entropy_weight=0.5)
    loss.backward()
    assert float(loss) == 0.0 and not student.grad.any()
    assert float(parts['entropy']) > 0  # still measured and logged
    one_valid = none_valid.clone()
    one_valid[0, 0, 0] = 1
    with_one = gdkd_loss(student, teacher, one_valid, entropy_weight=0.5)[0]
    without = gdkd_loss(student, teacher, one_valid)[0]
    torch.testing.assert_close(with_one, without - 0.5 * parts['entropy'])
