"""Tests for ``gdkd_seg.losses`` against an independent per-pixel reference.

The reference below is written straight from the definitions: for every valid pixel it computes the softmax
probabilities, the group masses and the within-group distributions, and each KL as ``sum p * (log p - log q)``
(``0 log 0 = 0``), in float64 numpy, or with mpmath (40 digits) where float64 probabilities under- or overflow
(logits of magnitude 1e3). It loops over pixels in Python, so every test keeps its pixel counts small.
"""
import math
import re
from types import SimpleNamespace

import mpmath
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import MODELS as ROOT
from mmpretrain.registry import MODELS as PRETRAIN
from mmseg.registry import MODELS
from mmseg.registry import MODELS as SEG

from gdkd_seg.benchmark.naive import naive_gdkd
from gdkd_seg.losses import (
    CWDLoss,
    DKDLoss,
    GDKD3Loss,
    GDKDLoss,
    KDLoss,
    cwd_loss,
    dkd_loss,
    gdkd3_loss,
    gdkd_loss,
    kd_loss,
)

IGNORE = 255


# every test runs on the three implementations (tests/losses/conftest.py)
pytestmark = pytest.mark.usefixtures('implementation')

# --------------------------------------------------------------------------------------------------------------
# Independent reference
# --------------------------------------------------------------------------------------------------------------
NP = SimpleNamespace(
    name='float64',
    exp=np.exp,
    log=np.log,
    vec=lambda xs: np.asarray(xs, dtype=np.float64),
    num=float,
)
MP = SimpleNamespace(
    name='mpmath',
    exp=np.frompyfunc(mpmath.exp, 1, 1),
    log=np.frompyfunc(mpmath.log, 1, 1),
    vec=lambda xs: np.array([mpmath.mpf(float(x)) if not isinstance(x, mpmath.mpf) else x for x in xs],
                            dtype=object),
    num=float,
)


def _softmax(z, bk):
    e = bk.exp(z - z.max())
    return e / e.sum()


def _kl(p, q, bk):
    """KL(p || q) = sum_i p_i (log p_i - log q_i), terms with p_i = 0 are 0; inf when some q_i = 0 < p_i."""
    keep = np.asarray(p > 0, dtype=bool)
    if not keep.any():
        return bk.vec([0.0])[0]
    with np.errstate(divide='ignore', invalid='ignore'):
        return (p[keep] * (bk.log(p[keep]) - bk.log(q[keep]))).sum()


def _grouped_terms(zs, zt, T, groups, bk):
    """For one pixel: KL between the group masses, and the within-group KL for each group (0 for empty groups)."""
    ps = _softmax(bk.vec(zs) / T, bk)
    pt = _softmax(bk.vec(zt) / T, bk)
    mass_s = bk.vec([ps[g].sum() if len(g) else 0.0 for g in groups])
    mass_t = bk.vec([pt[g].sum() if len(g) else 0.0 for g in groups])
    kl_mass = _kl(mass_t, mass_s, bk)
    within = []
    for g in groups:
        if len(g) == 0:
            within.append(0.0)
        else:
            within.append(_kl(pt[g] / pt[g].sum(), ps[g] / ps[g].sum(), bk))
    return kl_mass, within


def _teacher_order(zt):
    return np.argsort(-np.asarray(zt, dtype=np.float64), kind='stable')


def _topp_cum_before(zt, T):
    """Teacher probabilities in rank order and the cumulative probability of the classes ranked before each."""
    z = np.asarray(zt, dtype=np.float64) / T
    p = np.exp(z - z.max())
    p = p / p.sum()
    order = np.argsort(-p, kind='stable')
    cum = np.cumsum(p[order])
    before = np.concatenate([[0.0], cum[:-1]])
    return order, before


def _topp_set(zt, T, top_p, k_max):
    order, before = _topp_cum_before(zt, T)
    n = int((before < top_p).sum())  # ``before`` is non-decreasing: the included classes are a prefix
    if k_max is not None:
        n = min(n, k_max)
    return order[:n], order[n:]


def _rows(x):
    """(B, C, H, W) -> (B*H*W, C) and (N, C) -> (N, C), as float64 numpy."""
    x = x.detach().double()
    if x.dim() == 4:
        x = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
    return x.numpy()


def _gt_rows(gt, logits):
    if gt is None:
        return None
    gt = gt.detach()
    if gt.dim() == 4:
        gt = gt[:, 0]
    if logits.dim() == 4:
        assert gt.shape == (logits.shape[0], ) + tuple(logits.shape[2:]), 'reference does not resize gt'
    return gt.reshape(-1).long().numpy()


def ref_loss(kind, s, t, gt=None, T=1.0, ignore_index=IGNORE, bk=NP, k=3, w0=1.0, w1=1.0, w2=2.0, alpha=1.0,
             beta=8.0, partition='topk', top_p=0.9, k_max=None):
    """Reference (loss, parts) for kind in gdkd, gdkd3, dkd, kd; same-size inputs only."""
    assert s.shape == t.shape, 'reference does not resize the teacher'
    S, Tt = _rows(s), _rows(t)
    labels = _gt_rows(gt, s)
    names = {
        'gdkd': ('kl_mass', 'kl_top', 'kl_other'),
        'gdkd3': ('kl_mass', 'kl_mid', 'kl_other'),
        'dkd': ('kl_mass', 'kl_other'),
        'kd': ('kl', ),
    }[kind]
    sums = {n: 0.0 for n in names}
    n_valid = 0
    for i in range(S.shape[0]):
        if labels is not None and labels[i] == ignore_index:
            continue
        n_valid += 1
        zs, zt = S[i], Tt[i]
        if kind == 'kd':
            ps = _softmax(bk.vec(zs) / T, bk)
            pt = _softmax(bk.vec(zt) / T, bk)
            sums['kl'] += bk.num(_kl(pt, ps, bk))
            continue
        if kind == 'gdkd':
            if partition == 'topk':
                order = _teacher_order(zt)
                groups = [order[:k], order[k:]]
            else:
                groups = list(_topp_set(zt, T, top_p, k_max))
            kl_mass, within = _grouped_terms(zs, zt, T, groups, bk)
            vals = (kl_mass, within[0], within[1])
        elif kind == 'gdkd3':
            order = _teacher_order(zt)
            kl_mass, within = _grouped_terms(zs, zt, T, [order[:1], order[1:k], order[k:]], bk)
            assert bk.num(within[0]) == 0.0
            vals = (kl_mass, within[1], within[2])
        elif kind == 'dkd':
            c = int(labels[i])
            rest = np.array([j for j in range(S.shape[1]) if j != c], dtype=np.int64)
            kl_mass, within = _grouped_terms(zs, zt, T, [np.array([c]), rest], bk)
            vals = (kl_mass, within[1])
        for n, v in zip(names, vals):
            sums[n] += bk.num(v)
    parts = {n: (v / n_valid if n_valid else 0.0) for n, v in sums.items()}
    if kind == 'gdkd':
        loss = w0 * parts['kl_mass'] + w1 * parts['kl_top'] + w2 * parts['kl_other']
    elif kind == 'gdkd3':
        loss = w0 * parts['kl_mass'] + w1 * parts['kl_mid'] + w2 * parts['kl_other']
    elif kind == 'dkd':
        loss = alpha * parts['kl_mass'] + beta * parts['kl_other']
    else:
        loss = parts['kl']
    return T * T * loss, parts


def ref_cwd(s, t, T=1.0, bk=NP):
    """Channel-wise distillation: per (image, channel) softmax over positions, KL(t || s), T^2, mean over B*C."""
    assert s.shape == t.shape and s.dim() == 4
    S, Tt = s.detach().double().numpy(), t.detach().double().numpy()
    B, C = S.shape[:2]
    total = 0.0
    for b in range(B):
        for c in range(C):
            ps = _softmax(bk.vec(S[b, c].ravel()) / T, bk)
            pt = _softmax(bk.vec(Tt[b, c].ravel()) / T, bk)
            total += bk.num(_kl(pt, ps, bk))
    return T * T * total / (B * C)


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------
def _gen(seed):
    return torch.Generator().manual_seed(seed)


def make_pair(shape, scale, seed, dtype=torch.float32):
    g = _gen(seed)
    s = (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype)
    t = (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype)
    return s, t


def make_gt(logits, seed, ignore_frac=0.3):
    g = _gen(seed + 1000)
    C = logits.shape[1]
    shape = (logits.shape[0], ) + tuple(logits.shape[2:]) if logits.dim() == 4 else (logits.shape[0], )
    gt = torch.randint(0, C, shape, generator=g)
    if ignore_frac:
        drop = torch.rand(shape, generator=g) < ignore_frac
        drop.view(-1)[0] = True  # at least one ignored pixel
        gt[drop] = IGNORE
    return gt


def confident_pair(shape, seed, dtype=torch.float32):
    """Teacher: one class 30..100 above the rest (rest ~ 5*randn). Student: confident the same way, in the
    teacher's class for half the pixels and in another class for the others."""
    g = _gen(seed)
    C = shape[1]
    rows = int(np.prod(shape)) // C

    def one(cls):
        z = torch.randn(rows, C, generator=g, dtype=torch.float64) * 5
        gap = 30 + 70 * torch.rand(rows, generator=g, dtype=torch.float64)
        top = z.max(1).values + gap
        z[torch.arange(rows), cls] = top
        return z

    ct = torch.randint(0, C, (rows, ), generator=g)
    cs = torch.where(torch.arange(rows) % 2 == 0, ct, (ct + 1 + torch.randint(0, C - 1, (rows, ), generator=g)) % C)
    t, s = one(ct), one(cs)
    if len(shape) == 4:
        B, _, H, W = shape
        t = t.reshape(B, H, W, C).permute(0, 3, 1, 2).contiguous()
        s = s.reshape(B, H, W, C).permute(0, 3, 1, 2).contiguous()
    return s.to(dtype), t.to(dtype)


def rel_err(got, ref):
    got = float(got)
    ref = float(ref)
    return abs(got - ref) / max(abs(ref), 1e-30)


def assert_close(got, ref, rtol, atol=0.0, what=''):
    got, ref = float(got), float(ref)
    assert math.isfinite(got), f'{what}: got non-finite {got}'
    assert abs(got - ref) <= rtol * abs(ref) + atol, \
        f'{what}: got {got!r}, reference {ref!r}, rel err {rel_err(got, ref):.3g}'


EPS32 = float(torch.finfo(torch.float32).eps)


def float32_floor(s, t, T=1.0):
    """Absolute error floor of a float32 KL between logit vectors: log-probabilities such as ``z - lse(z)`` are
    rounded at the scale of the logits, so any float32 evaluation is off by a few ulp(max |z| / T), however small
    the KL itself is (e.g. a within-group KL of 0.1 between groups whose logits are 30 apart); group masses near
    1 are rounded at ulp(1), which bounds how well a small mass KL can be resolved."""
    return 4 * EPS32 * max(1.0, float(s.abs().max()) / T, float(t.abs().max()) / T)


def check_against_ref(got, ref, rtol=1e-5, atol_parts=0.0):
    """The loss within ``rtol``; each part within ``rtol`` plus ``atol_parts`` (see :func:`float32_floor`)."""
    (loss, parts), (rloss, rparts) = got, ref
    assert set(parts) == set(rparts), f'parts keys {sorted(parts)} != {sorted(rparts)}'
    assert_close(loss, rloss, rtol, what='loss')
    for n in rparts:
        assert not parts[n].requires_grad, f'part {n} is not detached'
        assert parts[n].dim() == 0, f'part {n} is not a scalar'
        assert_close(parts[n], rparts[n], rtol, atol_parts, what=n)


# Values: (C, scale, T, shape). The C = 1000 cases are (N, C) classification logits.
VALUE_CASES = [
    (19, 1.0, 1.0, (2, 19, 4, 5)),
    (19, 5.0, 4.0, (2, 19, 4, 5)),
    (19, 20.0, 1.0, (2, 19, 4, 5)),
    (150, 1.0, 1.0, (2, 150, 4, 4)),
    (150, 5.0, 1.0, (2, 150, 4, 4)),
    (150, 20.0, 2.0, (2, 150, 4, 4)),
    (1000, 1.0, 1.0, (40, 1000)),
    (1000, 5.0, 4.0, (40, 1000)),
    (1000, 20.0, 1.0, (40, 1000)),
]
VALUE_IDS = [f'C{c}-x{s:g}-T{t:g}' for c, s, t, _ in VALUE_CASES]


def _case_inputs(case, ignore, seed):
    C, scale, T, shape = case
    s, t = make_pair(shape, scale, seed)
    gt = make_gt(s, seed) if ignore else None
    return s, t, gt, T


# --------------------------------------------------------------------------------------------------------------
# Values against the reference
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('ignore', [False, True], ids=['all-valid', 'ignored'])
@pytest.mark.parametrize('case', VALUE_CASES, ids=VALUE_IDS)
def test_gdkd_topk_values(case, ignore):
    s, t, gt, T = _case_inputs(case, ignore, seed=1)
    for k, w in [(1, (1.0, 1.0, 2.0)), (2, (1.3, 0.7, 2.1)), (5, (1.0, 1.0, 2.0))]:
        got = gdkd_loss(s, t, gt, k=k, w0=w[0], w1=w[1], w2=w[2], temperature=T)
        ref = ref_loss('gdkd', s, t, gt, T=T, k=k, w0=w[0], w1=w[1], w2=w[2])
        check_against_ref(got, ref, atol_parts=float32_floor(s, t, T))


def _safe_topp_gt(s, t, gt, T, top_p, margin=2e-5):
    """Mark pixels whose cumulative teacher probability comes within ``margin`` of ``top_p`` as ignored: there the
    set is decided by rounding, so float32 and float64 may legitimately differ."""
    labels = _gt_rows(gt, s)
    T_rows = _rows(t)
    P = T_rows.shape[0]
    if labels is None:
        labels = np.zeros(P, dtype=np.int64)
    labels = labels.copy()
    for i in range(P):
        _, before = _topp_cum_before(T_rows[i], T)
        if np.abs(before - top_p).min() < margin:
            labels[i] = IGNORE
    assert (labels != IGNORE).sum() >= P // 4, 'too few safe pixels: change the seed'
    shape = (s.shape[0], ) + tuple(s.shape[2:]) if s.dim() == 4 else (s.shape[0], )
    return torch.from_numpy(labels).reshape(shape)


@pytest.mark.parametrize('ignore', [False, True], ids=['all-valid', 'ignored'])
@pytest.mark.parametrize('case', VALUE_CASES, ids=VALUE_IDS)
def test_gdkd_topp_values(case, ignore):
    s, t, gt, T = _case_inputs(case, ignore, seed=2)
    for top_p, k_max in [(0.5, None), (0.9, None), (0.9, 3)]:
        g = _safe_topp_gt(s, t, gt, T, top_p)
        got = gdkd_loss(s, t, g, w0=1.3, w1=0.7, w2=2.1, temperature=T, partition='topp', top_p=top_p, k_max=k_max)
        ref = ref_loss('gdkd', s, t, g, T=T, w0=1.3, w1=0.7, w2=2.1, partition='topp', top_p=top_p, k_max=k_max)
        check_against_ref(got, ref, atol_parts=float32_floor(s, t, T))


def test_topp_reference_sets():
    """The reference's top-p set follows the definition on a hand-made pixel."""
    p = np.array([0.5, 0.3, 0.15, 0.05])
    z = np.log(p)
    assert list(_topp_set(z, 1.0, 0.5, None)[0]) == [0]  # before = 0 < .5; next before = .5, not < .5
    assert list(_topp_set(z, 1.0, 0.51, None)[0]) == [0, 1]
    assert list(_topp_set(z, 1.0, 0.9, None)[0]) == [0, 1, 2]
    assert list(_topp_set(z, 1.0, 0.9, 2)[0]) == [0, 1]
    assert list(_topp_set(z, 1.0, 1.0, None)[0]) == [0, 1, 2, 3]


@pytest.mark.parametrize('ignore', [False, True], ids=['all-valid', 'ignored'])
@pytest.mark.parametrize('case', VALUE_CASES, ids=VALUE_IDS)
def test_gdkd3_values(case, ignore):
    s, t, gt, T = _case_inputs(case, ignore, seed=3)
    for k, w in [(2, (1.0, 1.0, 2.0)), (5, (1.3, 0.7, 2.1))]:
        got = gdkd3_loss(s, t, gt, k=k, w0=w[0], w1=w[1], w2=w[2], temperature=T)
        ref = ref_loss('gdkd3', s, t, gt, T=T, k=k, w0=w[0], w1=w[1], w2=w[2])
        check_against_ref(got, ref, atol_parts=float32_floor(s, t, T))


@pytest.mark.parametrize('ignore', [False, True], ids=['all-valid', 'ignored'])
@pytest.mark.parametrize('case', VALUE_CASES, ids=VALUE_IDS)
def test_dkd_values(case, ignore):
    C, scale, T, shape = case
    s, t = make_pair(shape, scale, seed=4)
    gt = make_gt(s, 4, ignore_frac=0.3 if ignore else 0.0)
    got = dkd_loss(s, t, gt, alpha=1.3, beta=8.0, temperature=T)
    ref = ref_loss('dkd', s, t, gt, T=T, alpha=1.3, beta=8.0)
    check_against_ref(got, ref, atol_parts=float32_floor(s, t, T))


@pytest.mark.parametrize('ignore', [False, True], ids=['all-valid', 'ignored'])
@pytest.mark.parametrize('case', VALUE_CASES, ids=VALUE_IDS)
def test_kd_values(case, ignore):
    s, t, gt, T = _case_inputs(case, ignore, seed=5)
    check_against_ref(kd_loss(s, t, gt, temperature=T), ref_loss('kd', s, t, gt, T=T),
                      atol_parts=float32_floor(s, t, T))


@pytest.mark.parametrize('case', [c for c in VALUE_CASES if len(c[3]) == 4],
                         ids=[i for c, i in zip(VALUE_CASES, VALUE_IDS) if len(c[3]) == 4])
def test_cwd_values(case):
    C, scale, T, shape = case
    s, t = make_pair(shape, scale, seed=6)
    loss, parts = cwd_loss(s, t, temperature=T)
    assert parts == {}
    assert_close(loss, ref_cwd(s, t, T), 1e-5, what='cwd')
    # gt is not used by CWD; the module ignores it as documented
    m = CWDLoss(temperature=T, loss_weight=0.5)
    assert_close(m(s, t), 0.5 * ref_cwd(s, t, T), 1e-5, what='CWDLoss')


def test_gt_none_equals_all_valid_gt():
    s, t = make_pair((2, 19, 3, 4), 3.0, seed=7)
    gt = make_gt(s, 7, ignore_frac=0.0)
    for fn in (gdkd_loss, gdkd3_loss, kd_loss):
        assert torch.allclose(fn(s, t, None)[0], fn(s, t, gt)[0], rtol=1e-6, atol=0)


@pytest.mark.parametrize('offset', [0.0, 30.0, 1e3])
def test_shift_invariance(offset):
    """Adding a constant to all of a pixel's logits changes no softmax, so no loss. The shifted float32 inputs
    match the reference for those inputs, and the unshifted loss, to the float32 floor of their magnitude; a
    student that is the teacher shifted gives (near) zero."""
    s, t = make_pair((2, 19, 3, 4), 3.0, seed=8)
    gt = make_gt(s, 8)
    s2 = s + offset + 50.0 * torch.randn(2, 1, 3, 4, generator=_gen(80))
    t2 = t - offset + 50.0 * torch.randn(2, 1, 3, 4, generator=_gen(81))
    cases = [('gdkd', gdkd_loss, dict(k=3), 1 + 1 + 2), ('gdkd', gdkd_loss, dict(k=1), 1 + 1 + 2),
             ('gdkd3', gdkd3_loss, dict(k=3), 1 + 1 + 2), ('dkd', dkd_loss, {}, 1 + 8), ('kd', kd_loss, {}, 1)]
    for name, fn, kw, weight_sum in cases:
        floor = weight_sum * float32_floor(s2, t2)
        got = fn(s2, t2, gt, **kw)[0]
        assert_close(got, ref_loss(name, s2, t2, gt, **kw)[0], 1e-5, floor, what=f'{name} {kw} shifted vs ref')
        assert_close(got, fn(s, t, gt, **kw)[0], 1e-5, floor, what=f'{name} {kw} shifted vs unshifted')
        same = fn(t2 + 2 * offset, t2, gt, **kw)[0]  # student = teacher + constant
        assert abs(float(same)) <= floor, f'{name} {kw}: {float(same)} for a shifted copy of the teacher'


def test_ignore_index_and_memory_layout():
    s, t = make_pair((2, 19, 3, 4), 3.0, seed=29)
    gt = make_gt(s, 29)
    gt_neg = gt.clone()
    gt_neg[gt == IGNORE] = -1
    s_cl = s.contiguous(memory_format=torch.channels_last)
    t_nc = t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    assert not t_nc.is_contiguous()
    for fn in (gdkd_loss, gdkd3_loss, dkd_loss, kd_loss):
        ref = fn(s, t, gt)[0]
        assert_close(fn(s, t, gt_neg, ignore_index=-1)[0], ref, 1e-6, what=f'{fn.__name__} ignore_index=-1')
        assert_close(fn(s_cl, t_nc, gt)[0], ref, 1e-6, what=f'{fn.__name__} memory layout')
    assert_close(cwd_loss(s_cl, t_nc)[0], cwd_loss(s, t)[0], 1e-6)


# --------------------------------------------------------------------------------------------------------------
# Resizing
# --------------------------------------------------------------------------------------------------------------
def _nearest(gt, size):
    return F.interpolate(gt[:, None].float(), size=size, mode='nearest')[:, 0].long()


def test_gt_resized_nearest():
    s, t = make_pair((2, 7, 5, 6), 2.0, seed=9)
    gt_big = make_gt(torch.empty(2, 7, 17, 13), 9, ignore_frac=0.3)
    gt_small = _nearest(gt_big, (5, 6))
    # The test data tells 'nearest' apart from the other natural choice ('nearest-exact')
    other = F.interpolate(gt_big[:, None].float(), size=(5, 6), mode='nearest-exact')[:, 0].long()
    assert not torch.equal(gt_small, other)
    for name, fn, kw in [('gdkd', gdkd_loss, dict(k=2)), ('gdkd3', gdkd3_loss, dict(k=3)),
                         ('dkd', dkd_loss, {}), ('kd', kd_loss, {})]:
        got = fn(s, t, gt_big, **kw)
        same = fn(s, t, gt_small, **kw)
        assert torch.allclose(got[0], same[0], rtol=1e-6, atol=0), name
        assert torch.allclose(fn(s, t, gt_big[:, None], **kw)[0], same[0], rtol=1e-6, atol=0), f'{name} (B,1,H,W)'
        check_against_ref(got, ref_loss(name, s, t, gt_small, **kw))
        assert not torch.allclose(fn(s, t, other, **kw)[0], same[0], rtol=1e-6, atol=0), \
            f'{name}: test cannot tell the resize modes apart'


def test_gt_same_size_4d_label():
    s, t = make_pair((2, 7, 5, 6), 2.0, seed=10)
    gt = make_gt(s, 10)
    for fn in (gdkd_loss, gdkd3_loss, dkd_loss, kd_loss):
        assert torch.equal(fn(s, t, gt[:, None])[0], fn(s, t, gt)[0])


def test_teacher_resized_bilinear():
    s, _ = make_pair((2, 7, 5, 6), 2.0, seed=11)
    t_small = 2.0 * torch.randn(2, 7, 3, 4, generator=_gen(110))
    t_res = F.interpolate(t_small, size=(5, 6), mode='bilinear', align_corners=False)
    t_ac = F.interpolate(t_small, size=(5, 6), mode='bilinear', align_corners=True)
    gt = make_gt(s, 11)
    for name, fn, kw in [('gdkd', gdkd_loss, dict(k=2)), ('gdkd', gdkd_loss, dict(partition='topp', top_p=0.7)),
                         ('gdkd3', gdkd3_loss, dict(k=3)), ('dkd', dkd_loss, {}), ('kd', kd_loss, {})]:
        args = (gt, ) if name == 'dkd' else (None, )
        got = fn(s, t_small, *args, **kw)
        same = fn(s, t_res, *args, **kw)
        assert torch.allclose(got[0], same[0], rtol=1e-6, atol=0), name
        assert not torch.allclose(fn(s, t_ac, *args, **kw)[0], same[0], rtol=1e-6, atol=0)
        if kw.get('partition') != 'topp':
            check_against_ref(got, ref_loss(name, s, t_res, *args, **kw))
    got = cwd_loss(s, t_small, temperature=2.0)[0]
    assert torch.allclose(got, cwd_loss(s, t_res, temperature=2.0)[0], rtol=1e-6, atol=0)
    assert_close(got, ref_cwd(s, t_res, 2.0), 1e-5, what='cwd resized')


def test_teacher_and_gt_resized_together():
    """gt goes to the student's size, which is also the size the teacher is brought to."""
    s, _ = make_pair((1, 6, 4, 5), 2.0, seed=12)
    t_big = 2.0 * torch.randn(1, 6, 9, 11, generator=_gen(120))
    gt_big = make_gt(torch.empty(1, 6, 9, 11), 12)
    t_res = F.interpolate(t_big, size=(4, 5), mode='bilinear', align_corners=False)
    gt_res = _nearest(gt_big, (4, 5))
    for name, fn in [('gdkd', gdkd_loss), ('gdkd3', gdkd3_loss), ('dkd', dkd_loss), ('kd', kd_loss)]:
        check_against_ref(fn(s, t_big, gt_big), ref_loss(name, s, t_res, gt_res))


# --------------------------------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------------------------------
GRAD_FNS = [
    ('gdkd-k1', lambda s, t, g: gdkd_loss(s, t, g, k=1, w0=1.3, w1=0.7, w2=2.1, temperature=2.0)[0]),
    ('gdkd-k2', lambda s, t, g: gdkd_loss(s, t, g, k=2, w0=1.3, w1=0.7, w2=2.1, temperature=2.0)[0]),
    ('gdkd-topp', lambda s, t, g: gdkd_loss(s, t, g, partition='topp', top_p=0.6, temperature=1.5)[0]),
    ('gdkd-topp-kmax', lambda s, t, g: gdkd_loss(s, t, g, partition='topp', top_p=0.95, k_max=2)[0]),
    ('gdkd-kC', lambda s, t, g: gdkd_loss(s, t, g, k=s.shape[1])[0]),
    ('gdkd3', lambda s, t, g: gdkd3_loss(s, t, g, k=3, w0=1.3, w1=0.7, w2=2.1, temperature=2.0)[0]),
    ('dkd', lambda s, t, g: dkd_loss(s, t, g, alpha=1.3, beta=8.0, temperature=2.0)[0]),
    ('kd', lambda s, t, g: kd_loss(s, t, g, temperature=2.0)[0]),
    ('cwd', lambda s, t, g: cwd_loss(s, t, temperature=2.0)[0]),
    ('GDKDLoss', lambda s, t, g: GDKDLoss(k=2, loss_weight=0.5)(s, t, g)),
    ('gdkd-incorrect-entropy', lambda s, t, g: gdkd_loss(s, t, g, k=2, temperature=2.0, ignore_incorrect=True,
                                                         entropy_weight=0.3)[0]),
]


# CWD is defined on spatial maps only, so it has no (N, C) case
GRAD_CASES = [(name, fn, layout) for name, fn in GRAD_FNS for layout in ('4d', '4d-teacher-resized', '2d')
              if not (name == 'cwd' and layout == '2d')]


@pytest.mark.parametrize('name,fn,layout', GRAD_CASES, ids=[f'{n}-{layout}' for n, _, layout in GRAD_CASES])
def test_gradcheck(name, fn, layout):
    g = _gen(13)
    shape = (7, 6) if layout == '2d' else (2, 6, 2, 3)
    s = (2 * torch.randn(shape, generator=g, dtype=torch.float64)).requires_grad_()
    if layout == '4d-teacher-resized':
        t = 2 * torch.randn(2, 6, 3, 2, generator=g, dtype=torch.float64)
    else:
        t = 2 * torch.randn(shape, generator=g, dtype=torch.float64)
    gt = make_gt(s, 13)
    assert fn(s, t, gt).dtype == torch.float64
    assert torch.autograd.gradcheck(lambda x: fn(x, t, gt), (s, ), eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize('name,fn', GRAD_FNS, ids=[n for n, _ in GRAD_FNS])
def test_teacher_gets_no_gradient_and_float32_grad_matches_float64(name, fn):
    s64, t64 = make_pair((2, 19, 3, 4), 4.0, seed=14, dtype=torch.float64)
    gt = make_gt(s64, 14)
    s32, t32 = s64.float().requires_grad_(), t64.float().requires_grad_()
    fn(s32, t32, gt).backward()
    assert t32.grad is None or not t32.grad.any(), 'gradient reached the teacher logits'
    s64 = s64.float().double().requires_grad_()
    fn(s64, t32.detach().double(), gt).backward()
    assert s32.grad.dtype == torch.float32
    scale = s64.grad.abs().max()
    assert scale > 0
    assert torch.allclose(s32.grad.double(), s64.grad, rtol=1e-4, atol=1e-5 * float(scale))


# --------------------------------------------------------------------------------------------------------------
# Identities
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('T', [1.0, 3.0])
def test_gdkd_k1_equals_dkd(T):
    s, t = make_pair((2, 19, 4, 5), 4.0, seed=15)
    gt = t.argmax(1)
    gt[0, 0, :3] = IGNORE
    gt[1, 2, 1] = IGNORE
    loss, parts = gdkd_loss(s, t, gt, k=1, w0=1.3, w1=0.7, w2=5.0, temperature=T)
    dloss, dparts = dkd_loss(s, t, gt, alpha=1.3, beta=5.0, temperature=T)
    assert_close(loss, dloss, 1e-6, what='gdkd k=1 vs dkd')
    assert_close(parts['kl_mass'], dparts['kl_mass'], 1e-6, what='kl_mass')
    assert_close(parts['kl_other'], dparts['kl_other'], 1e-6, what='kl_other')
    assert float(parts['kl_top']) == 0.0
    # also when gt is None for GDKD (it does not need gt) and pixels are all valid
    gt_all = t.argmax(1)
    assert_close(gdkd_loss(s, t, None, k=1, w0=1.3, w2=5.0, temperature=T)[0],
                 dkd_loss(s, t, gt_all, alpha=1.3, beta=5.0, temperature=T)[0], 1e-6)


def test_gdkd_k_equals_C_is_w1_times_kd():
    s, t = make_pair((2, 19, 3, 4), 4.0, seed=16)
    gt = make_gt(s, 16)
    loss, parts = gdkd_loss(s, t, gt, k=19, w0=1.0, w1=0.7, w2=2.0, temperature=2.0)
    kd, kparts = kd_loss(s, t, gt, temperature=2.0)
    assert torch.isfinite(loss)
    assert abs(float(parts['kl_mass'])) < 1e-7 and abs(float(parts['kl_other'])) < 1e-7
    assert_close(parts['kl_top'], kparts['kl'], 1e-5, what='kl_top vs kd')
    assert_close(loss, 0.7 * kd, 1e-5, what='gdkd k=C')
    s.requires_grad_()
    gdkd_loss(s, t, gt, k=19)[0].backward()
    assert torch.isfinite(s.grad).all()


def test_gdkd3_edge_groups():
    s, t = make_pair((2, 19, 3, 4), 4.0, seed=17)
    gt = make_gt(s, 17)
    # k = 2: the middle group is one class, its within-KL is 0
    assert abs(float(gdkd3_loss(s, t, gt, k=2)[1]['kl_mid'])) < 1e-7
    # k = C: the 'rest' group is empty
    loss, parts = gdkd3_loss(s, t, gt, k=19)
    assert torch.isfinite(loss) and abs(float(parts['kl_other'])) < 1e-7
    check_against_ref((loss, parts), ref_loss('gdkd3', s, t, gt, k=19))
    # k = 1: the middle group is empty; if accepted, it is GDKD with k = 1
    try:
        loss1, parts1 = gdkd3_loss(s, t, gt, k=1, w0=1.3, w2=2.1)
    except ValueError as err:
        assert re.search(r'\bk\b', str(err))
    else:
        g_loss, g_parts = gdkd_loss(s, t, gt, k=1, w0=1.3, w2=2.1)
        assert_close(loss1, g_loss, 1e-6, what='gdkd3 k=1 vs gdkd k=1')
        assert float(parts1['kl_mid']) == 0.0


def test_topp_limits_match_topk():
    s, t = make_pair((2, 19, 3, 4), 1.0, seed=18)
    gt = make_gt(s, 18)
    top1 = gdkd_loss(s, t, gt, k=1)[0]
    assert_close(gdkd_loss(s, t, gt, partition='topp', top_p=1e-9)[0], top1, 1e-6, what='top_p tiny')
    assert_close(gdkd_loss(s, t, gt, partition='topp', top_p=0.99, k_max=1)[0], top1, 1e-6, what='k_max=1')
    assert_close(gdkd_loss(s, t, gt, partition='topp', top_p=1.0, k_max=4)[0],
                 gdkd_loss(s, t, gt, k=4)[0], 1e-6, what='top_p=1, k_max=4')


def _all_losses(s, t, gt, T=1.0):
    return {
        'gdkd': gdkd_loss(s, t, gt, k=3, temperature=T),
        'gdkd-topp': gdkd_loss(s, t, gt, partition='topp', temperature=T),
        'gdkd3': gdkd3_loss(s, t, gt, k=3, temperature=T),
        'dkd': dkd_loss(s, t, gt, temperature=T),
        'kd': kd_loss(s, t, gt, temperature=T),
        'cwd': cwd_loss(s, t, temperature=T) if s.dim() == 4 else (torch.zeros(()), {}),
    }


@pytest.mark.parametrize('scale', [1.0, 20.0, 1e3])
def test_zero_when_student_equals_teacher(scale):
    s, _ = make_pair((2, 19, 3, 4), scale, seed=19)
    gt = make_gt(s, 19)
    for name, (loss, parts) in _all_losses(s, s.clone(), gt, T=2.0).items():
        assert abs(float(loss)) <= 1e-6, f'{name}: {float(loss)}'
        for n, v in parts.items():
            assert abs(float(v)) <= 1e-6, f'{name}.{n}: {float(v)}'


@pytest.mark.parametrize('scale', [0.1, 1.0, 5.0, 50.0])
def test_non_negative(scale):
    for shape in [(2, 19, 3, 4), (16, 150)]:
        s, t = make_pair(shape, scale, seed=20)
        gt = make_gt(s, 20)
        for name, (loss, parts) in _all_losses(s, t, gt).items():
            assert float(loss) >= 0, f'{name}: {float(loss)}'
            for n, v in parts.items():
                assert float(v) >= 0, f'{name}.{n}: {float(v)}'


def test_parts_combine_to_loss():
    s, t = make_pair((2, 19, 3, 4), 3.0, seed=21)
    gt = make_gt(s, 21)
    T, lw = 2.0, 0.7
    cases = [
        (GDKDLoss(k=3, w0=1.3, w1=0.6, w2=2.1, temperature=T, loss_weight=lw), gdkd_loss,
         dict(k=3, w0=1.3, w1=0.6, w2=2.1), lambda p: 1.3 * p['kl_mass'] + 0.6 * p['kl_top'] + 2.1 * p['kl_other']),
        (GDKDLoss(w0=1.3, w1=0.6, w2=2.1, temperature=T, loss_weight=lw, partition='topp', top_p=0.8, k_max=5),
         gdkd_loss, dict(w0=1.3, w1=0.6, w2=2.1, partition='topp', top_p=0.8, k_max=5),
         lambda p: 1.3 * p['kl_mass'] + 0.6 * p['kl_top'] + 2.1 * p['kl_other']),
        (GDKD3Loss(k=4, w0=1.3, w1=0.6, w2=2.1, temperature=T, loss_weight=lw), gdkd3_loss,
         dict(k=4, w0=1.3, w1=0.6, w2=2.1), lambda p: 1.3 * p['kl_mass'] + 0.6 * p['kl_mid'] + 2.1 * p['kl_other']),
        (DKDLoss(alpha=1.3, beta=6.0, temperature=T, loss_weight=lw), dkd_loss, dict(alpha=1.3, beta=6.0),
         lambda p: 1.3 * p['kl_mass'] + 6.0 * p['kl_other']),
        (KDLoss(temperature=T, loss_weight=lw), kd_loss, {}, lambda p: p['kl']),
    ]
    for module, fn, kw, combine in cases:
        value = module(s, t, gt)
        loss, parts = fn(s, t, gt, temperature=T, **kw)
        assert_close(value, lw * loss, 1e-6, what=f'{module.loss_name} module vs function')
        assert set(module.parts) == set(parts)
        for n in parts:
            assert float(module.parts[n]) == float(parts[n])
        assert_close(value, lw * T * T * combine(parts), 1e-5, what=f'{module.loss_name} parts')
    assert_close(CWDLoss(temperature=T, loss_weight=lw)(s, t), lw * cwd_loss(s, t, temperature=T)[0], 1e-6)


def test_loss_names():
    assert GDKDLoss().loss_name == 'loss_gdkd'
    assert GDKD3Loss().loss_name == 'loss_gdkd3'
    assert DKDLoss().loss_name == 'loss_dkd'
    assert KDLoss().loss_name == 'loss_kd'
    assert CWDLoss().loss_name == 'loss_cwd'


# --------------------------------------------------------------------------------------------------------------
# Numerical stability
# --------------------------------------------------------------------------------------------------------------
STABLE_FNS = [
    ('gdkd', lambda s, t, g: gdkd_loss(s, t, None, k=3)[0], dict(kind='gdkd', k=3)),
    ('gdkd-topp', lambda s, t, g: gdkd_loss(s, t, None, partition='topp', top_p=0.9)[0],
     dict(kind='gdkd', partition='topp', top_p=0.9)),
    ('gdkd3', lambda s, t, g: gdkd3_loss(s, t, g, k=3)[0], dict(kind='gdkd3', k=3, gt=True)),
    ('dkd', lambda s, t, g: dkd_loss(s, t, g)[0], dict(kind='dkd', gt=True)),
    ('kd', lambda s, t, g: kd_loss(s, t, g, temperature=4.0)[0], dict(kind='kd', T=4.0, gt=True)),
    ('cwd', lambda s, t, g: cwd_loss(s, t)[0], dict(kind='cwd')),
]


def _stress_inputs(kind, shape, dtype=torch.float32):
    """randn1e3: independent 1e3*randn logits. confident: see :func:`confident_pair`. offset1e3: moderate logits
    (3*randn) around +1e3 for the student and -1e3 for the teacher: magnitudes of 1e3 but a moderate KL, so an
    error proportional to the logits' magnitude shows."""
    if kind == 'randn1e3':
        return make_pair(shape, 1e3, seed=22, dtype=dtype)
    if kind == 'offset1e3':
        s, t = make_pair(shape, 3.0, seed=31, dtype=torch.float64)
        return (s + 1e3).to(dtype), (t - 1e3).to(dtype)
    return confident_pair(shape, seed=23, dtype=dtype)


def _ref_for(spec, s, t, gt, bk):
    spec = dict(spec)
    kind = spec.pop('kind')
    if kind == 'cwd':
        return ref_cwd(s, t, bk=bk) if s.dim() == 4 else None
    use_gt = spec.pop('gt', False)
    T = spec.pop('T', 1.0)
    return ref_loss(kind, s, t, gt if use_gt else None, T=T, bk=bk, **spec)[0]


STABLE_SHAPES = {'C19': (1, 19, 2, 4), 'C150': (1, 150, 2, 2), 'C1000': (6, 1000)}
# CWD is defined on spatial maps only, so it has no (N, C) case
STABLE_CASES = [(name, fn, spec, shape_id) for name, fn, spec in STABLE_FNS for shape_id, shape in STABLE_SHAPES.items()
                if not (name == 'cwd' and len(shape) == 2)]


@pytest.mark.parametrize('inputs', ['randn1e3', 'confident', 'offset1e3'])
@pytest.mark.parametrize('name,fn,spec,shape_id', STABLE_CASES, ids=[f'{c[0]}-{c[3]}' for c in STABLE_CASES])
def test_float32_large_logits(name, fn, spec, shape_id, inputs):
    shape = STABLE_SHAPES[shape_id]
    s, t = _stress_inputs(inputs, shape)
    gt = make_gt(s, 22, ignore_frac=0.25)
    if name == 'gdkd-topp':  # keep away from the top-p boundary (set decided by rounding)
        gt = _safe_topp_gt(s, t, None, 1.0, 0.9)

        def fn(s, t, g):
            return gdkd_loss(s, t, g, partition='topp', top_p=0.9)[0]
        spec = dict(spec, gt=True)
    s32 = s.clone().requires_grad_()
    loss32 = fn(s32, t, gt)
    assert torch.isfinite(loss32), f'{name}: {float(loss32)}'
    loss32.backward()
    assert torch.isfinite(s32.grad).all()
    s64 = s.double().requires_grad_()
    loss64 = fn(s64, t.double(), gt)
    assert_close(loss32, loss64, 1e-4, what=f'{name} float32 vs float64')
    loss64.backward()
    scale = float(s64.grad.abs().max())
    assert torch.allclose(s32.grad.double(), s64.grad, rtol=1e-3, atol=1e-4 * scale)
    with mpmath.workdps(40):
        ref = _ref_for(spec, s, t, gt, MP)
    if ref is not None:
        assert_close(loss32, ref, 1e-4, what=f'{name} float32 vs mpmath reference')
        assert_close(loss64, ref, 1e-9, what=f'{name} float64 vs mpmath reference')
    # these inputs are still within float64 probabilities' range: the plain reference agrees
    if inputs != 'randn1e3' and ref is not None:
        assert_close(_ref_for(spec, s, t, gt, NP), ref, 1e-9, what='float64 reference vs mpmath')


@pytest.mark.parametrize('inputs', ['randn1e3', 'confident'])
def test_naive_form_fails_where_ours_does_not(inputs):
    """Why the implementation works in log space: on these inputs summing probabilities then taking the log
    underflows to log(0) in float32, and the naive loss is inf/NaN."""
    s, t = _stress_inputs(inputs, (4, 19, 8, 8))
    naive = naive_gdkd(s, t, k=3)
    assert not torch.isfinite(naive), f'naive form unexpectedly finite: {float(naive)}'
    ours = gdkd_loss(s, t, None, k=3)[0]
    assert torch.isfinite(ours)
    # on tame inputs the naive form is right, so it is the same function
    s1, t1 = make_pair((2, 19, 4, 4), 1.0, seed=24)
    assert_close(naive_gdkd(s1, t1, k=3), gdkd_loss(s1, t1, None, k=3)[0], 1e-5, what='naive vs ours, tame')


def _low_precision_fns():
    return [(n, fn) for n, fn, _ in STABLE_FNS] + [('GDKDLoss', lambda s, t, g: GDKDLoss(k=3)(s, t, g))]


@pytest.mark.parametrize('inputs', ['randn1e3', 'confident'])
def test_float16_logits(inputs):
    s, t = _stress_inputs(inputs, (2, 19, 3, 4))
    s16, t16 = s.half(), t.half()
    gt = make_gt(s, 25)
    for name, fn in _low_precision_fns():
        x = s16.clone().requires_grad_()
        loss = fn(x, t16, gt)
        assert torch.isfinite(loss), f'{name}: {float(loss)}'
        loss.backward()
        assert x.grad.dtype == torch.float16
        assert torch.isfinite(x.grad).all(), name
        # the same numbers in float32 give (nearly) the same loss
        assert_close(loss, fn(s16.float(), t16.float(), gt), 1e-3, what=f'{name} fp16 vs fp32')


def test_low_precision_teacher_resized():
    s, _ = make_pair((2, 19, 3, 4), 20.0, seed=30)
    t = 20.0 * torch.randn(2, 19, 2, 2, generator=_gen(30))
    gt = make_gt(s, 30)
    for dtype in (torch.float16, torch.bfloat16):
        for name, fn in _low_precision_fns():
            x = s.to(dtype).requires_grad_()
            loss = fn(x, t.to(dtype), gt)
            loss.backward()
            assert torch.isfinite(loss) and torch.isfinite(x.grad).all(), f'{name} {dtype}'
            assert_close(loss, fn(s.to(dtype).float(), t.to(dtype).float(), gt), 2e-2, what=f'{name} {dtype}')


@pytest.mark.parametrize('inputs', ['randn1e3', 'confident'])
def test_bfloat16_autocast(inputs):
    s, t = _stress_inputs(inputs, (2, 19, 3, 4))
    gt = make_gt(s, 26)
    feats = torch.randn(2, 8, 3, 4, generator=_gen(26))
    for name, fn in _low_precision_fns():
        head = torch.nn.Conv2d(8, 19, 1)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            logits = head(feats) + s.bfloat16()  # bf16 conv, then the big logits
            assert logits.dtype == torch.bfloat16
            loss = fn(logits, t.bfloat16(), gt)
        assert torch.isfinite(loss), f'{name}: {float(loss)}'
        loss.backward()
        assert torch.isfinite(head.weight.grad).all() and torch.isfinite(head.bias.grad).all(), name
        assert_close(loss, fn(logits.detach().float(), t.bfloat16().float(), gt), 1e-2,
                     what=f'{name} bf16 autocast vs fp32')


# --------------------------------------------------------------------------------------------------------------
# No valid pixel
# --------------------------------------------------------------------------------------------------------------
NO_VALID_FNS = [
    ('gdkd', lambda s, t, g: gdkd_loss(s, t, g, k=3)),
    ('gdkd-topp', lambda s, t, g: gdkd_loss(s, t, g, partition='topp')),
    ('gdkd3', lambda s, t, g: gdkd3_loss(s, t, g, k=3)),
    ('dkd', lambda s, t, g: dkd_loss(s, t, g)),
    ('kd', lambda s, t, g: kd_loss(s, t, g, temperature=2.0)),
    ('GDKDLoss', lambda s, t, g: (GDKDLoss(loss_weight=2.0)(s, t, g), {})),
    ('DKDLoss', lambda s, t, g: (DKDLoss()(s, t, g), {})),
]


@pytest.mark.parametrize('shape', [(2, 19, 3, 4), (5, 19)], ids=['4d', '2d'])
@pytest.mark.parametrize('name,fn', NO_VALID_FNS, ids=[n for n, _ in NO_VALID_FNS])
def test_no_valid_pixel(name, fn, shape):
    s, t = make_pair(shape, 50.0, seed=27)
    gt = torch.full((shape[0], ) + shape[2:], IGNORE, dtype=torch.long)
    s.requires_grad_()
    loss, parts = fn(s, t, gt)
    assert torch.isfinite(loss) and float(loss) == 0.0
    assert all(torch.isfinite(v) and float(v) == 0.0 for v in parts.values())
    loss.backward()
    assert s.grad is not None and torch.isfinite(s.grad).all() and not s.grad.any()


# --------------------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------------------
S19, T19 = make_pair((2, 19, 3, 4), 1.0, seed=28)
GT19 = make_gt(S19, 28)


def _raises(fn, *patterns):
    with pytest.raises(ValueError) as info:
        fn()
    msg = str(info.value)
    for p in patterns:
        assert re.search(p, msg), f'message {msg!r} does not match {p!r}'


ALL_FNS = [('gdkd', gdkd_loss, (None, )), ('gdkd3', gdkd3_loss, (None, )), ('dkd', dkd_loss, (GT19, )),
           ('kd', kd_loss, (None, )), ('cwd', cwd_loss, ())]


@pytest.mark.parametrize('name,fn,args', ALL_FNS, ids=[n for n, _, _ in ALL_FNS])
def test_errors_shapes(name, fn, args):
    _raises(lambda: fn(S19, T19[:, :18], *args), '19', '18', r'(?i)class|teacher|student')
    _raises(lambda: fn(S19[:, :17], T19, *args), '17', '19', r'(?i)class|teacher|student')
    _raises(lambda: fn(S19[0], T19[0], *args), r'(?i)student|logits|dim|shape')
    _raises(lambda: fn(S19[..., None], T19[..., None], *args), r'(?i)student|logits|dim|shape')
    _raises(lambda: fn(S19, T19.flatten(2).transpose(1, 2).reshape(-1, 19), *args), r'(?i)teacher|logits|dim')


@pytest.mark.parametrize('name,fn,args', ALL_FNS, ids=[n for n, _, _ in ALL_FNS])
def test_errors_temperature(name, fn, args):
    _raises(lambda: fn(S19, T19, *args, temperature=0.0), 'temperature', '0')
    _raises(lambda: fn(S19, T19, *args, temperature=-2.5), 'temperature', r'-2\.5')


@pytest.mark.parametrize('fn', [gdkd_loss, gdkd3_loss], ids=['gdkd', 'gdkd3'])
def test_errors_k(fn):
    _raises(lambda: fn(S19, T19, None, k=0), r'\bk\b', r'\b0\b')
    _raises(lambda: fn(S19, T19, None, k=-2), r'\bk\b', '-2')
    _raises(lambda: fn(S19, T19, None, k=20), r'\bk\b', r'\b20\b', r'\b19\b')


def test_errors_topp_partition_dkd_gt():
    for top_p in (0.0, -0.1, 1.5):
        _raises(lambda: gdkd_loss(S19, T19, None, partition='topp', top_p=top_p), 'top_p', re.escape(str(top_p)))
    _raises(lambda: gdkd_loss(S19, T19, None, partition='topx'), 'partition', 'topx')
    _raises(lambda: dkd_loss(S19, T19, None), r'\bgt\b')
    _raises(lambda: DKDLoss()(S19, T19), r'\bgt\b')


@pytest.mark.parametrize('build,patterns', [
    (lambda: GDKDLoss(k=0), (r'\bk\b', )),
    (lambda: GDKDLoss(k=25), (r'\bk\b', '25')),
    (lambda: GDKD3Loss(k=0), (r'\bk\b', )),
    (lambda: GDKDLoss(temperature=0.0), ('temperature', )),
    (lambda: DKDLoss(temperature=-1.0), ('temperature', )),
    (lambda: KDLoss(temperature=0.0), ('temperature', )),
    (lambda: CWDLoss(temperature=0.0), ('temperature', )),
    (lambda: GDKDLoss(partition='topp', top_p=1.5), ('top_p', '1.5')),
    (lambda: GDKDLoss(partition='nope'), ('partition', 'nope')),
])
def test_errors_modules(build, patterns):
    """Bad settings raise at construction or, at the latest, on the first call."""

    def build_and_call():
        m = build()
        m(S19, T19, GT19) if not isinstance(m, CWDLoss) else m(S19, T19)

    _raises(build_and_call, *patterns)


BAD_OPTIONS = [
    (GDKDLoss, dict(w2='abc'), r"w2 must be a finite number, got w2='abc' \(str\)"),
    (GDKDLoss, dict(k=2.5), r'k must be an integer, got k=2\.5 \(float\)'),
    (GDKDLoss, dict(k=True), r'k must be an integer, got k=True \(bool\)'),
    (GDKDLoss, dict(w0=-1.0), r'w0 must be >= 0 \(a weight\), got w0=-1\.0'),
    (GDKDLoss, dict(temperature='1'), r"temperature must be a finite number, got temperature='1' \(str\)"),
    (GDKDLoss, dict(partition='topp', top_p=0.0), r'top_p must be in \(0, 1\], got top_p=0\.0'),
    (GDKDLoss, dict(partition='topp', k_max=1.5), r'k_max must be an integer, got k_max=1\.5'),
    (GDKDLoss, dict(loss_name='gdkd'), r"loss_name must be a string containing 'loss'"),
    (GDKD3Loss, dict(w1=float('inf')), r'w1 must be a finite number, got w1=inf'),
    (GDKD3Loss, dict(k='3'), r"k must be an integer, got k='3' \(str\)"),
    (DKDLoss, dict(beta=-8.0), r'beta must be >= 0 \(a weight\), got beta=-8\.0'),
    (DKDLoss, dict(alpha=None), r'alpha must be a finite number, got alpha=None'),
    (DKDLoss, dict(ignore_index=255.0), r'ignore_index must be an integer label, got ignore_index=255\.0'),
    (KDLoss, dict(loss_weight=-0.5), r'loss_weight must be >= 0 \(a weight\), got loss_weight=-0\.5'),
    (KDLoss, dict(temperature=float('nan')), r'temperature must be a finite number, got temperature=nan'),
    (CWDLoss, dict(loss_weight='5'), r"loss_weight must be a finite number, got loss_weight='5' \(str\)"),
    (CWDLoss, dict(temperature=True), r'temperature must be a finite number, got temperature=True \(bool\)'),
    (GDKDLoss, dict(entropy_weight=-0.1), r'entropy_weight must be >= 0 \(a weight\), got entropy_weight=-0\.1'),
    (GDKDLoss, dict(ignore_incorrect='yes'), r"ignore_incorrect must be True or False, got ignore_incorrect='yes'"),
]


@pytest.mark.parametrize('cls,options,message', BAD_OPTIONS,
                         ids=[f'{c.__name__}-{list(o)[-1]}' for c, o, _ in BAD_OPTIONS])
def test_wrong_option_types_and_values_are_refused_at_build(cls, options, message):
    """At construction, naming the option: not at the first step deep in the kernel, nor accepted silently."""
    with pytest.raises(ValueError, match=message):
        cls(**options)


def test_wrong_option_types_are_refused_by_the_loss_functions():
    with pytest.raises(ValueError, match=r"w2 must be a finite number, got w2='abc'"):
        gdkd_loss(S19, T19, None, w2='abc')
    with pytest.raises(ValueError, match=r'k must be an integer, got k=2\.5'):
        gdkd3_loss(S19, T19, None, k=2.5)
    with pytest.raises(ValueError, match=r'alpha must be >= 0'):
        dkd_loss(S19, T19, GT19, alpha=-1.0)
    # numpy scalars are numbers like any other
    assert torch.isfinite(gdkd_loss(S19, T19, None, k=np.int64(3), w2=np.float32(2.0))[0])


# --------------------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------------------
REGISTRY_CFGS = [
    (dict(type='GDKDLoss', k=2, w2=3.0, temperature=2.0, loss_weight=0.5), GDKDLoss),
    (dict(type='GDKDLoss', partition='topp', top_p=0.8, k_max=4), GDKDLoss),
    (dict(type='GDKDLoss', entropy_weight=0.01), GDKDLoss),
    (dict(type='GDKD3Loss', k=4), GDKD3Loss),
    (dict(type='DKDLoss', alpha=1.0, beta=4.0, temperature=2.0), DKDLoss),
    (dict(type='KDLoss', temperature=4.0, loss_weight=2.0), KDLoss),
    (dict(type='CWDLoss', temperature=4.0, loss_weight=3.0), CWDLoss),
]


@pytest.mark.parametrize('cfg,cls', REGISTRY_CFGS, ids=[f"{c['type']}-{i}" for i, (c, _) in enumerate(REGISTRY_CFGS)])
def test_registry(cfg, cls):

    assert ROOT.get(cfg['type']) is cls
    a = SEG.build(dict(cfg))
    b = PRETRAIN.build(dict(cfg))
    assert type(a) is cls and type(b) is cls
    kw = {k: v for k, v in cfg.items() if k != 'type'}
    direct = cls(**kw)
    args = (S19, T19) if cls is CWDLoss else (S19, T19, GT19)
    va, vb, vd = a(*args), b(*args), direct(*args)
    assert torch.isfinite(va) and float(va) > 0
    assert torch.equal(va, vb) and torch.equal(va, vd)


# --------------------------------------------------------------------------------------------------------------
# Logit standardization (Sun et al., CVPR 2024)
# --------------------------------------------------------------------------------------------------------------
def _standardized64(logits):
    """Reference z-score per pixel over the classes, in float64 numpy: sample std (ddof=1), 1e-7 added to it."""
    z = logits.detach().double().numpy()
    mean = z.mean(axis=1, keepdims=True)
    std = z.std(axis=1, ddof=1, keepdims=True)
    return torch.from_numpy((z - mean) / (std + 1e-7))


STANDARDIZED = [
    ('gdkd', lambda s, t, g, **o: gdkd_loss(s, t, g, k=2, w0=1.3, w1=0.7, w2=2.1, **o), dict(k=2, w0=1.3, w1=0.7,
                                                                                          w2=2.1)),
    ('dkd', lambda s, t, g, **o: dkd_loss(s, t, g, alpha=1.3, beta=4.0, **o), dict(alpha=1.3, beta=4.0)),
    ('kd', kd_loss, {}),
]


@pytest.mark.parametrize('name,fn,ref_options', STANDARDIZED, ids=[n for n, _, _ in STANDARDIZED])
def test_logit_standardize_values(name, fn, ref_options):
    """The loss of the z-scored logits, against the float64 reference on logits z-scored in float64; a row of equal
    logits (std 0) becomes the uniform distribution, not NaN; scaling and shifting either side's logits per pixel
    changes nothing."""
    s, t = make_pair((2, 19, 3, 4), 20.0, seed=31)
    s[0, :, 0, 0] = 7.0  # a constant student row
    t[1, :, 2, 3] = -3.0  # a constant teacher row
    gt = make_gt(s, 31)
    got = fn(s, t, gt, temperature=4.0, logit_standardize=True)
    ref = ref_loss(name, _standardized64(s), _standardized64(t), gt, T=4.0, **ref_options)
    check_against_ref(got, ref, atol_parts=1e-6)
    plain = fn(s, t, gt, temperature=4.0)[0]
    assert abs(float(plain) - ref[0]) > 1e-3 * ref[0], 'standardization changed nothing'
    scale = 0.5 + torch.rand(2, 1, 3, 4, generator=_gen(32))
    shifted = fn(s * scale + 100.0, t * 3.0 - 50.0, gt, temperature=4.0, logit_standardize=True)[0]
    assert_close(shifted, ref[0], 1e-4, what='scaled and shifted')


def test_logit_standardize_topp_reads_the_standardized_teacher():
    s, t = make_pair((2, 19, 3, 4), 20.0, seed=33)
    got = gdkd_loss(s, t, None, partition='topp', top_p=0.7, temperature=2.0, logit_standardize=True)
    ref = ref_loss('gdkd', _standardized64(s), _standardized64(t), None, T=2.0, partition='topp', top_p=0.7)
    check_against_ref(got, ref, atol_parts=1e-6)


def test_logit_standardize_gradient_and_low_precision():
    g = _gen(34)
    s = (5 * torch.randn(2, 6, 2, 3, generator=g, dtype=torch.float64)).requires_grad_()
    t = 5 * torch.randn(2, 6, 2, 3, generator=g, dtype=torch.float64)
    gt = make_gt(s, 34)
    assert torch.autograd.gradcheck(lambda x: gdkd_loss(x, t, gt, k=2, logit_standardize=True)[0], (s, ),
                                    eps=1e-6, atol=1e-6, rtol=1e-4)
    # bf16 logits of magnitude 1e3: mean and spread in float32, the loss that of the bf16 values in float64
    s16, t16 = (torch.randn(3, 19, generator=g) * 1e3).bfloat16(), (torch.randn(3, 19, generator=g) * 1e3).bfloat16()
    ref = ref_loss('kd', _standardized64(s16), _standardized64(t16), None, T=1.0)
    check_against_ref(kd_loss(s16, t16, None, logit_standardize=True), ref, rtol=1e-4, atol_parts=1e-5)


def test_logit_standardize_option_errors():
    with pytest.raises(ValueError, match=r'logit_standardize must be True or False, got logit_standardize=1 \(int\)'):
        GDKDLoss(logit_standardize=1)
    with pytest.raises(ValueError, match=r"logit_standardize must be True or False, got logit_standardize='yes'"):
        kd_loss(S19, T19, None, logit_standardize='yes')
    with pytest.raises(ValueError, match=r'logit_standardize needs at least 2 classes.*C=1'):
        kd_loss(S19[:, :1], T19[:, :1], None, logit_standardize=True)
    built = MODELS.build(dict(type='DKDLoss', logit_standardize=True))
    assert built.options['logit_standardize'] is True
    assert torch.isfinite(built(S19, T19, GT19))


# --------------------------------------------------------------------------------------------------------------
# seg-gdkd's GDKD options: ignore_incorrect and entropy_weight
# --------------------------------------------------------------------------------------------------------------
def _correct_only(s, t, gt):
    """gt with every pixel where the teacher's argmax (float64, per row) differs from the label set to IGNORE."""
    labels = _gt_rows(gt, s)
    keep = (labels != IGNORE) & (_rows(t).argmax(1) == labels)
    return torch.from_numpy(np.where(keep, labels, IGNORE)).reshape(gt.shape)


def _ref_entropy(s, T):
    """Mean over every row of -sum p log p of softmax(z / T), in float64."""
    return float(np.mean([-(p[p > 0] * np.log(p[p > 0])).sum() for p in (_softmax(z / T, NP) for z in _rows(s))]))


def _half_correct_gt(t, seed):
    """Labels equal to the teacher's argmax at about half the pixels, another class or ignored elsewhere."""
    g = _gen(seed)
    gt = t.argmax(1)
    other = torch.rand(gt.shape, generator=g) < 0.5
    gt[other] = (gt[other] + 1 + torch.randint(0, t.shape[1] - 1, gt.shape, generator=g)[other]) % t.shape[1]
    gt[torch.rand(gt.shape, generator=g) < 0.15] = IGNORE
    return gt


@pytest.mark.parametrize('shape', [(2, 19, 4, 5), (24, 7)], ids=['4d', '2d'])
def test_gdkd_ignore_incorrect_values(shape):
    s, t = make_pair(shape, 4.0, seed=41)
    gt = _half_correct_gt(t, 41)
    kept = _correct_only(s, t, gt)
    assert 0 < int((kept != IGNORE).sum()) < int((gt != IGNORE).sum())
    for kw in (dict(k=2, w0=1.3, w1=0.7, w2=2.1, temperature=2.0), dict(k=3)):
        got = gdkd_loss(s, t, gt, ignore_incorrect=True, **kw)
        ref = ref_loss('gdkd', s, t, kept, T=kw.pop('temperature', 1.0), **kw)
        check_against_ref(got, ref, atol_parts=float32_floor(s, t))
    plain = gdkd_loss(s, t, gt)[0]
    assert abs(float(plain) - float(gdkd_loss(s, t, gt, ignore_incorrect=True)[0])) > 1e-3


def test_gdkd_ignore_incorrect_argmax_at_the_students_resolution():
    """The teacher's argmax is taken after its bilinear resize to the student's size, against the labels resized
    (nearest) to that size -- not at the teacher's own resolution."""
    s, _ = make_pair((1, 5, 4, 5), 2.0, seed=42)
    t_big = 3.0 * torch.randn(1, 5, 9, 11, generator=_gen(42))
    gt_big = _half_correct_gt(t_big, 42)
    t_res = F.interpolate(t_big, size=(4, 5), mode='bilinear', align_corners=False)
    gt_res = _nearest(gt_big, (4, 5))
    kept = _correct_only(s, t_res, gt_res)
    correct_at_teacher_size = _nearest(torch.where(t_big.argmax(1) == gt_big, gt_big, IGNORE), (4, 5))
    assert not torch.equal(kept, correct_at_teacher_size), 'the data do not tell the two resolutions apart'
    check_against_ref(gdkd_loss(s, t_big, gt_big, ignore_incorrect=True), ref_loss('gdkd', s, t_res, kept))


@pytest.mark.parametrize('shape', [(2, 19, 4, 5), (24, 7)], ids=['4d', '2d'])
def test_gdkd_entropy_weight_values(shape):
    s, t = make_pair(shape, 4.0, seed=43)
    gt = make_gt(s, 43)
    for T, weight in ((1.0, 0.1), (3.0, 2.0)):
        loss, parts = gdkd_loss(s, t, gt, k=2, temperature=T, entropy_weight=weight)
        ref_value, ref_parts = ref_loss('gdkd', s, t, gt, T=T, k=2)
        entropy = _ref_entropy(s, T)  # every pixel, the ignored ones too
        check_against_ref((loss, parts), (ref_value - weight * entropy, dict(ref_parts, entropy=entropy)),
                          atol_parts=float32_floor(s, t, T))
    assert 'entropy' not in gdkd_loss(s, t, gt)[1]
    # both options at once, and through the module
    module = GDKDLoss(k=2, ignore_incorrect=True, entropy_weight=0.5, loss_weight=2.0)
    gt = _half_correct_gt(t, 43)
    ref_value = ref_loss('gdkd', s, t, _correct_only(s, t, gt), k=2)[0] - 0.5 * _ref_entropy(s, 1.0)
    assert_close(module(s, t, gt), 2.0 * ref_value, 1e-5, what='GDKDLoss with both options')
    assert set(module.parts) == {'kl_mass', 'kl_top', 'kl_other', 'entropy'}


def test_gdkd_entropy_is_finite_for_confident_low_precision_students():
    s, t = confident_pair((2, 19, 3, 4), seed=44)
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        x = s.to(dtype).requires_grad_()
        loss, parts = gdkd_loss(x, t.to(dtype), None, entropy_weight=1.0)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(x.grad).all(), dtype
        assert_close(parts['entropy'], _ref_entropy(s.to(dtype).float(), 1.0), 1e-4, atol=1e-6, what=str(dtype))


def test_gdkd_ignore_incorrect_needs_gt():
    with pytest.raises(ValueError, match=r'ignore_incorrect=True needs gt'):
        gdkd_loss(S19, T19, None, ignore_incorrect=True)
    with pytest.raises(ValueError, match=r'ignore_incorrect=True needs gt'):
        GDKDLoss(ignore_incorrect=True)(S19, T19)
