"""Tests for DIST (``gdkd_seg.losses.dist_loss`` / ``DISTLoss``) against an independent float64 reference.

The reference loops over pixels and classes in Python with numpy float64: per pixel a softmax, per pixel and per
class a Pearson correlation written from its definition, with the eps where the loss's docstring places it
(added to the product of the two centred norms). DIST runs no kernel, so these tests need not run on the three
implementations of the grouped losses; their tensors stay tiny for the Python loops.
"""
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import MODELS

from gdkd_seg.losses import DISTLoss, dist_loss
from gdkd_seg.models.loss_set import build_distill_losses, distill_loss_dict

IGNORE = 255
EPS = 1e-8


# --------------------------------------------------------------------------------------------------------------
# Independent reference
# --------------------------------------------------------------------------------------------------------------
def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def _pearson(x, y):
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    dot = sum((a - mx) * (b - my) for a, b in zip(x, y))
    nx = math.sqrt(sum((a - mx) ** 2 for a in x))
    ny = math.sqrt(sum((b - my) ** 2 for b in y))
    return dot / (nx * ny + EPS)


def _pixels(x):
    """(B, C, H, W) -> list over images of lists of per-pixel float64 rows; (N, C) -> one image of N rows."""
    x = x.detach().double()
    if x.dim() == 2:
        return [list(x.numpy())]
    return [list(image.permute(1, 2, 0).reshape(-1, x.shape[1]).numpy()) for image in x]


def ref_dist(s, t, gt=None, beta=1.0, gamma=1.0, T=1.0, per_image_intra=False, ignore_index=IGNORE):
    """DIST's loss and parts; teacher and labels already at the student's size."""
    images_s, images_t = _pixels(s), _pixels(t)
    if gt is None:
        labels = [[0] * len(rows) for rows in images_s]
    else:
        labels = [list(g.reshape(-1).numpy()) for g in (gt if s.dim() == 4 else gt[None])]
    probs = []  # per image: list of (p_s, p_t) of its valid pixels
    for rows_s, rows_t, image_labels in zip(images_s, images_t, labels):
        probs.append([(_softmax(zs / T), _softmax(zt / T)) for zs, zt, label in zip(rows_s, rows_t, image_labels)
                      if gt is None or label != ignore_index])
    valid = [pair for image in probs for pair in image]
    parts = {}
    if beta > 0:
        parts['inter'] = (sum(1 - _pearson(ps, pt) for ps, pt in valid) / len(valid)) if valid else 0.0
    if gamma > 0:
        groups = [image for image in probs if image] if per_image_intra else ([valid] if valid else [])
        terms = [1 - _pearson([ps[c] for ps, _ in group], [pt[c] for _, pt in group])
                 for group in groups for c in range(s.shape[1])]
        parts['intra'] = sum(terms) / len(terms) if terms else 0.0
    loss = beta * parts.get('inter', 0.0) + gamma * parts.get('intra', 0.0)
    return loss, parts


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------
def _gen(seed):
    return torch.Generator().manual_seed(seed)


def make_pair(shape, scale, seed, dtype=torch.float32):
    g = _gen(seed)
    return tuple((scale * torch.randn(shape, generator=g, dtype=torch.float64)).to(dtype) for _ in range(2))


def make_gt(shape, num_classes, seed, ignore_frac=0.3):
    g = _gen(seed + 1000)
    gt = torch.randint(0, num_classes, shape, generator=g)
    drop = torch.rand(shape, generator=g) < ignore_frac
    drop.view(-1)[0] = True
    return gt.masked_fill(drop, IGNORE)


def assert_matches(got, ref, rtol=1e-5, atol=1e-6):
    (loss, parts), (ref_loss, ref_parts) = got, ref
    assert set(parts) == set(ref_parts)
    for name, value in [('loss', loss)] + list(parts.items()):
        expected = ref_loss if name == 'loss' else ref_parts[name]
        value = float(value.detach())
        assert abs(value - expected) <= rtol * abs(expected) + atol, f'{name}: {value} vs {expected}'
    assert all(not part.requires_grad and part.dim() == 0 for part in parts.values())


# --------------------------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------------------------
CASES = [  # (shape, scale, T, beta, gamma)
    ((2, 5, 3, 4), 1.0, 1.0, 1.0, 1.0),
    ((2, 5, 3, 4), 4.0, 1.0, 2.0, 0.5),
    ((2, 19, 2, 3), 3.0, 4.0, 1.0, 1.0),
    ((2, 5, 3, 4), 2.0, 2.0, 0.0, 1.0),
    ((2, 5, 3, 4), 2.0, 1.0, 1.0, 0.0),
    ((12, 7), 2.0, 1.0, 1.0, 1.0),
    ((12, 7), 5.0, 4.0, 1.0, 2.0),
]


@pytest.mark.parametrize('ignore', [False, True], ids=['all-valid', 'ignored'])
@pytest.mark.parametrize('case', CASES, ids=[f'{len(c[0])}d-C{c[0][1]}-x{c[1]:g}-T{c[2]:g}-b{c[3]:g}-g{c[4]:g}'
                                             for c in CASES])
def test_values(case, ignore):
    shape, scale, T, beta, gamma = case
    s, t = make_pair(shape, scale, seed=1)
    gt = make_gt((shape[0], *shape[2:]), shape[1], seed=1) if ignore else None
    per_image_options = [False, True] if len(shape) == 4 else [False]
    for per_image_intra in per_image_options:
        got = dist_loss(s, t, gt, beta=beta, gamma=gamma, temperature=T, per_image_intra=per_image_intra)
        assert_matches(got, ref_dist(s, t, gt, beta, gamma, T, per_image_intra))
        # float64 inputs: agreement to float64 rounding
        got64 = dist_loss(s.double(), t.double(), gt, beta=beta, gamma=gamma, temperature=T,
                          per_image_intra=per_image_intra)
        assert_matches(got64, ref_dist(s, t, gt, beta, gamma, T, per_image_intra), rtol=1e-11, atol=1e-12)


def test_per_image_intra_differs_from_the_batch_and_skips_images_without_valid_pixels():
    s, t = make_pair((3, 5, 3, 3), 2.0, seed=2)
    gt = make_gt((3, 3, 3), 5, seed=2)
    gt[1] = IGNORE  # the second image has no valid pixel
    batch = dist_loss(s, t, gt, beta=0.0, per_image_intra=False)[1]['intra']
    per_image = dist_loss(s, t, gt, beta=0.0, per_image_intra=True)[1]['intra']
    assert abs(float(batch) - float(per_image)) > 1e-3
    assert_matches(dist_loss(s, t, gt, beta=0.0, per_image_intra=True),
                   ref_dist(s, t, gt, beta=0.0, per_image_intra=True))
    # the image without valid pixels does not count: same as the two others alone
    others = [0, 2]
    assert abs(float(per_image) - float(dist_loss(s[others], t[others], gt[others], beta=0.0,
                                                  per_image_intra=True)[1]['intra'])) < 1e-6


def test_ignored_pixels_are_left_out_of_both_terms():
    s, t = make_pair((2, 5, 3, 4), 2.0, seed=3)
    gt = make_gt((2, 3, 4), 5, seed=3, ignore_frac=0.4)
    ignored = (gt == IGNORE).unsqueeze(1).expand_as(s)
    s2, t2 = s.clone(), t.clone()
    s2[ignored] = 10 * torch.randn(int(ignored.sum()), generator=_gen(4))
    t2[ignored] = -s2[ignored]
    for per_image_intra in (False, True):
        a = dist_loss(s, t, gt, per_image_intra=per_image_intra)
        b = dist_loss(s2, t2, gt, per_image_intra=per_image_intra)
        assert abs(float(a[0]) - float(b[0])) < 1e-6
        # ... whereas counting every pixel (a label no pixel has) sees them
        every = dist_loss(s2, t2, gt, per_image_intra=per_image_intra, ignore_index=-1)
        assert abs(float(every[0]) - float(a[0])) > 1e-2
        assert_matches(every, ref_dist(s2, t2, None, per_image_intra=per_image_intra))


def test_gt_none_counts_every_pixel_and_gt_is_resized_nearest():
    s, t = make_pair((2, 5, 3, 4), 2.0, seed=5)
    assert_matches(dist_loss(s, t, None), ref_dist(s, t, None))
    gt = make_gt((2, 6, 8), 5, seed=5)
    small = F.interpolate(gt[:, None].float(), size=(3, 4), mode='nearest')[:, 0].long()
    assert_matches(dist_loss(s, t, gt), ref_dist(s, t, small))


def test_teacher_resized_bilinear_and_never_trained():
    s, _ = make_pair((2, 5, 3, 4), 2.0, seed=6)
    t = torch.randn(2, 5, 6, 8, generator=_gen(6), requires_grad=True)
    resized = F.interpolate(t.detach(), size=(3, 4), mode='bilinear', align_corners=False)
    x = s.clone().requires_grad_()
    loss, parts = dist_loss(x, t)
    assert_matches((loss, parts), ref_dist(s, resized))
    loss.backward()
    assert t.grad is None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_zero_for_the_teacher_itself_and_at_most_four():
    s, _ = make_pair((2, 5, 3, 4), 3.0, seed=7)
    loss, parts = dist_loss(s, s.clone())
    assert float(loss) < 1e-6 and all(float(p) < 1e-6 for p in parts.values())
    loss, _ = dist_loss(s, -s)  # Pearson >= -1: each term <= 2
    assert 0 < float(loss) <= 4 + 1e-6


def test_no_t_squared():
    """T only enters through softmax(z / T): the loss at T equals the loss at 1 of the logits divided by T."""
    s, t = make_pair((2, 5, 3, 4), 4.0, seed=8)
    at_t = dist_loss(s, t, temperature=4.0)[0]
    assert abs(float(at_t) - float(dist_loss(s / 4, t / 4)[0])) < 1e-6
    assert float(at_t) < 4  # T² = 16 would give up to 64


# --------------------------------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('layout', ['4d', '2d'])
def test_gradcheck(layout):
    shape = (2, 4, 2, 3) if layout == '4d' else (6, 4)
    s, t = make_pair(shape, 1.5, seed=9, dtype=torch.float64)
    gt = make_gt((shape[0], *shape[2:]), shape[1], seed=9)
    per_image_options = [False, True] if layout == '4d' else [False]
    for per_image_intra in per_image_options:
        for labels in (None, gt):
            def fn(x):
                return dist_loss(x, t, labels, beta=1.5, gamma=0.5, temperature=2.0,
                                 per_image_intra=per_image_intra)[0]

            assert torch.autograd.gradcheck(fn, (s.clone().requires_grad_(), ), eps=1e-6, atol=1e-7)


def test_float32_gradient_matches_float64():
    s, t = make_pair((2, 5, 3, 4), 3.0, seed=10)
    gt = make_gt((2, 3, 4), 5, seed=10)
    grads = []
    for dtype in (torch.float32, torch.float64):
        x = s.to(dtype, copy=True).requires_grad_()
        dist_loss(x, t.to(dtype), gt, per_image_intra=True)[0].backward()
        grads.append(x.grad.double())
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-7)


# --------------------------------------------------------------------------------------------------------------
# Numerics
# --------------------------------------------------------------------------------------------------------------
def test_eps_on_a_class_of_tiny_variance():
    """A class far below the others everywhere (p ~ 1e-9): the product of its centred norms is far below the eps,
    so its correlation counts as ~0 (term ~1), as the docstring says, although the student equals the teacher (its
    eps-free correlation is 1, like every other class's)."""
    s, _ = make_pair((1, 4, 4, 4), 1.0, seed=11)
    s[:, 0] -= 20
    loss, parts = dist_loss(s, s.clone(), beta=0.0)
    assert_matches((loss, parts), ref_dist(s, s, beta=0.0))
    assert float(parts['intra']) == pytest.approx(0.25, abs=1e-6)  # (1 + 0 + 0 + 0) / 4 classes


def test_constant_probabilities_and_single_pixels_are_finite():
    s = torch.zeros(1, 5, 1, 1, requires_grad=True)  # one pixel: no spread over pixels; uniform: none over classes
    loss, parts = dist_loss(s, torch.zeros(1, 5, 1, 1))
    assert float(parts['inter']) == 1.0 and float(parts['intra']) == 1.0
    loss.backward()
    assert torch.isfinite(s.grad).all()


@pytest.mark.parametrize('shape', [(2, 5, 3, 4), (6, 5)], ids=['4d', '2d'])
def test_no_valid_pixel(shape):
    s, t = make_pair(shape, 2.0, seed=12)
    s.requires_grad_()
    gt = torch.full((shape[0], *shape[2:]), IGNORE, dtype=torch.long)
    loss, parts = dist_loss(s, t, gt, per_image_intra=len(shape) == 4)
    assert float(loss) == 0.0 and all(float(v) == 0.0 for v in parts.values())
    loss.backward()
    assert s.grad is not None and not s.grad.any()


def test_large_logits_and_low_precision_compute_in_float32():
    s, t = make_pair((2, 19, 3, 4), 50.0, seed=13)
    gt = make_gt((2, 3, 4), 19, seed=13)
    for dtype in (torch.float16, torch.bfloat16):
        x = s.to(dtype).requires_grad_()
        loss, parts = dist_loss(x, t.to(dtype), gt)
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
        loss.backward()
        assert x.grad.dtype == dtype and torch.isfinite(x.grad).all()
        # the same (rounded) numbers in float64: equal to float32 rounding, not to fp16/bf16's
        assert_matches((loss, parts), ref_dist(s.to(dtype).float(), t.to(dtype).float(), gt), rtol=1e-5)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss, _ = dist_loss(s.bfloat16(), t.bfloat16(), gt)
    assert loss.dtype == torch.float32
    assert abs(float(loss) - ref_dist(s.bfloat16().float(), t.bfloat16().float(), gt)[0]) < 1e-5


# --------------------------------------------------------------------------------------------------------------
# Module, options, logging
# --------------------------------------------------------------------------------------------------------------
def test_module_and_registry():
    s, t = make_pair((2, 5, 3, 4), 2.0, seed=14)
    gt = make_gt((2, 3, 4), 5, seed=14)
    module = MODELS.build(dict(type='DISTLoss', beta=0.5, gamma=2.0, temperature=2.0, per_image_intra=True,
                               loss_weight=3.0))
    assert isinstance(module, DISTLoss) and module.loss_name == 'loss_dist'
    value = module(s, t, gt)
    loss, parts = dist_loss(s, t, gt, beta=0.5, gamma=2.0, temperature=2.0, per_image_intra=True)
    assert float(value) == pytest.approx(3.0 * float(loss), rel=1e-6)
    assert set(module.parts) == {'inter', 'intra'}


def test_parts_log_under_the_distillers_names():
    """GDKD + DIST's intra-class term as a second loss entry: its parts log cleanly next to GDKD's."""
    losses = build_distill_losses(dict(loss_gdkd=dict(type='GDKDLoss'),
                                       loss_dist_intra=dict(type='DISTLoss', beta=0.0, gamma=1.0)), MODELS)
    s, t = make_pair((2, 5, 3, 4), 2.0, seed=15)
    gt = make_gt((2, 3, 4), 5, seed=15)
    out = distill_loss_dict(losses, s, t, gt, 'distill', 1.0)
    assert {'distill.loss_dist_intra', 'distill.dist_intra_intra'} <= set(out)
    assert not any(key.startswith('distill.dist_intra_inter') for key in out)  # beta = 0: not computed
    assert float(out['distill.loss_dist_intra']) == pytest.approx(float(out['distill.dist_intra_intra']))
    out = distill_loss_dict(build_distill_losses(dict(loss_dist=dict(type='DISTLoss')), MODELS), s, t, gt,
                            'distill', 1.0)
    assert {'distill.loss_dist', 'distill.dist_inter', 'distill.dist_intra'} == set(out)


BAD_OPTIONS = [
    (dict(beta=-1.0), r'beta must be >= 0 \(a weight\), got beta=-1\.0'),
    (dict(gamma='1'), r"gamma must be a finite number, got gamma='1' \(str\)"),
    (dict(beta=0.0, gamma=0.0), r'beta=0 and gamma=0 is identically 0'),
    (dict(temperature=0.0), r'temperature must be > 0, got temperature=0\.0'),
    (dict(per_image_intra=1), r'per_image_intra must be True or False, got per_image_intra=1 \(int\)'),
    (dict(ignore_index=255.0), r'ignore_index must be an integer label'),
    (dict(loss_weight=-2.0), r'loss_weight must be >= 0'),
    (dict(loss_name='dist'), r"loss_name must be a string containing 'loss'"),
]


@pytest.mark.parametrize('options,message', BAD_OPTIONS, ids=[list(o)[-1] for o, _ in BAD_OPTIONS])
def test_bad_options_are_refused_at_build_naming_them(options, message):
    with pytest.raises(ValueError, match=message):
        DISTLoss(**options)
    function_options = {k: v for k, v in options.items() if k not in ('loss_weight', 'loss_name')}
    if function_options:
        s, t = make_pair((2, 5, 3, 4), 1.0, seed=16)
        with pytest.raises(ValueError, match=message):
            dist_loss(s, t, **function_options)


def test_shape_errors():
    s, t = make_pair((6, 5), 1.0, seed=17)
    with pytest.raises(ValueError, match=re.escape('per_image_intra=True needs (B, C, H, W) logits')):
        dist_loss(s, t, per_image_intra=True)
    with pytest.raises(ValueError, match='teacher and student must predict the same classes'):
        dist_loss(s, t[:, :4])
    s4, t4 = make_pair((2, 5, 3, 4), 1.0, seed=17)
    with pytest.raises(ValueError, match=r'gt must be \(B, H, W\)'):
        dist_loss(s4, t4, torch.zeros(3, 3, 4, dtype=torch.long))
