"""The fused CPU kernel of the grouped losses: that it is built and used, that it computes what the PyTorch
implementation computes on layouts and sizes the value tests in test_losses.py do not reach, and how it builds."""
import math
from contextlib import nullcontext

import pytest
import torch

import gdkd_seg  # noqa: F401
from gdkd_seg.losses import cpu_kernel, dkd_loss, gdkd3_loss, gdkd_loss, kd_loss

LOSSES = {
    'gdkd-k1': lambda s, t, gt, T: gdkd_loss(s, t, gt, k=1, temperature=T),
    'gdkd-k3': lambda s, t, gt, T: gdkd_loss(s, t, gt, k=3, w0=0.7, w1=1.3, w2=2.0, temperature=T),
    'gdkd-kC': lambda s, t, gt, T: gdkd_loss(s, t, gt, k=s.shape[1], temperature=T),
    'gdkd-topp': lambda s, t, gt, T: gdkd_loss(s, t, gt, partition='topp', top_p=0.6, k_max=4, temperature=T),
    'gdkd3': lambda s, t, gt, T: gdkd3_loss(s, t, gt, k=4, w0=1.5, w1=0.5, w2=2.0, temperature=T),
    'dkd': lambda s, t, gt, T: dkd_loss(s, t, gt, alpha=1.0, beta=8.0, temperature=T),
    'kd': lambda s, t, gt, T: kd_loss(s, t, gt, temperature=T),
}
# spatial sizes that are not multiples of the kernel's 64-pixel blocks, single pixels, and (N, C) rows
SHAPES = [(2, 19, 5, 7), (3, 19, 1, 1), (1, 150, 9, 70), (2, 5, 64, 3), (7, 19), (130, 6)]


def _inputs(shape, seed, scale=3.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    student = (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype)
    teacher = (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype)
    label_shape = (shape[0], *shape[2:])
    gt = torch.randint(0, shape[1], label_shape, generator=g)
    gt[torch.rand(label_shape, generator=g) < 0.25] = 255
    return student, teacher, gt


def _loss_and_grad(fn, student, teacher, gt, T):
    student = student.detach().clone().requires_grad_()
    loss, parts = fn(student, teacher, gt, T)
    loss.backward()
    return loss.detach(), {name: value.detach() for name, value in parts.items()}, student.grad


@pytest.fixture
def kernel_calls(monkeypatch):
    calls = []
    run = cpu_kernel.grouped_kl
    monkeypatch.setattr(cpu_kernel, 'grouped_kl', lambda *args, **kwargs: calls.append(1) or run(*args, **kwargs))
    return calls


def test_kernel_builds_and_runs_the_losses_on_cpu(kernel_calls):
    assert cpu_kernel.library() is not None
    for shape in [(2, 19, 4, 4), (6, 19)]:
        student, teacher, gt = _inputs(shape, 0, dtype=torch.float32)
        for fn in LOSSES.values():
            fn(student, teacher, gt, 1.0)
    assert len(kernel_calls) == 2 * len(LOSSES)
    with cpu_kernel.switched_off():
        gdkd_loss(student, teacher, gt)
    assert len(kernel_calls) == 2 * len(LOSSES)


@pytest.mark.parametrize('shape', SHAPES, ids=['x'.join(map(str, s)) for s in SHAPES])
@pytest.mark.parametrize('name', list(LOSSES))
@pytest.mark.parametrize('T', [1.0, 2.5])
def test_kernel_matches_pytorch_implementation(name, shape, T):
    student, teacher, gt = _inputs(shape, seed=len(name) + shape[1])
    fn = LOSSES[name]
    loss, parts, grad = _loss_and_grad(fn, student, teacher, gt, T)
    with cpu_kernel.switched_off():
        ref_loss, ref_parts, ref_grad = _loss_and_grad(fn, student, teacher, gt, T)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-10, atol=1e-12)
    for part in ref_parts:
        torch.testing.assert_close(parts[part], ref_parts[part], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-9, atol=1e-13)
    assert float(loss) > 0


def test_float32_kernel_matches_float64():
    student, teacher, gt = _inputs((2, 150, 16, 20), seed=3, scale=10.0)
    loss64, _, grad64 = _loss_and_grad(LOSSES['gdkd-k3'], student, teacher, gt, 1.0)
    loss32, _, grad32 = _loss_and_grad(LOSSES['gdkd-k3'], student.float(), teacher.float(), gt, 1.0)
    assert abs(float(loss32) - float(loss64)) <= 1e-6 * abs(float(loss64))
    torch.testing.assert_close(grad32.double(), grad64, rtol=1e-4, atol=1e-9)


def test_thread_count_does_not_change_results():
    student, teacher, gt = _inputs((2, 19, 64, 64), seed=4, dtype=torch.float32)
    threads = torch.get_num_threads()
    results = []
    try:
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            results.append(_loss_and_grad(LOSSES['gdkd-k3'], student, teacher, gt, 1.0))
    finally:
        torch.set_num_threads(threads)
    for loss, _, grad in results[1:]:
        assert torch.equal(loss, results[0][0]) and torch.equal(grad, results[0][2])


def test_non_contiguous_inputs():
    student, teacher, gt = _inputs((2, 19, 6, 8), seed=5, dtype=torch.float32)
    expected = _loss_and_grad(LOSSES['gdkd-k3'], student, teacher, gt, 1.0)
    channels_last = _loss_and_grad(LOSSES['gdkd-k3'], student.to(memory_format=torch.channels_last),
                                   teacher.to(memory_format=torch.channels_last), gt, 1.0)
    wide_s, wide_t = torch.cat([student, student], 3), torch.cat([teacher, teacher], 3)
    sliced = _loss_and_grad(LOSSES['gdkd-k3'], wide_s[..., ::2], wide_t[..., ::2], gt, 1.0)
    sliced_ref = _loss_and_grad(LOSSES['gdkd-k3'], wide_s[..., ::2].contiguous(), wide_t[..., ::2].contiguous(),
                                gt, 1.0)
    torch.testing.assert_close(channels_last[0], expected[0])
    torch.testing.assert_close(channels_last[2], expected[2])
    torch.testing.assert_close(sliced[0], sliced_ref[0])
    torch.testing.assert_close(sliced[2], sliced_ref[2])


def test_backward_twice_with_retained_graph():
    student, teacher, gt = _inputs((2, 19, 5, 5), seed=6, dtype=torch.float32)
    student.requires_grad_()
    loss, _ = gdkd_loss(student, teacher, gt)
    loss.backward(retain_graph=True)
    first = student.grad.clone()
    loss.backward()
    torch.testing.assert_close(student.grad, 2 * first)


@pytest.mark.parametrize('where', ['student', 'teacher-pixel'])
def test_nan_logits_give_nan_not_zero(where):
    """A NaN must reach the loss (NonFiniteLossHook stops training on it), never vanish into an empty group."""
    student, teacher, gt = _inputs((1, 19, 3, 3), seed=7, dtype=torch.float32)
    if where == 'student':
        student[0, 5, 1, 1] = math.nan
    else:
        teacher[0, :, 1, 1] = math.nan  # a whole pixel: no class is ever larger, the top-k slots stay free
    gt.fill_(2)
    for name, fn in LOSSES.items():
        for switched_off in (False, True):
            with cpu_kernel.switched_off() if switched_off else nullcontext():
                loss, _ = fn(student, teacher, gt, 1.0)
            assert math.isnan(float(loss)), (name, switched_off)


def test_too_many_groups_is_refused():
    student, teacher, _ = _inputs((1, 19, 2, 2), seed=8, dtype=torch.float32)
    with pytest.raises(RuntimeError, match='more than 8 class groups'):
        cpu_kernel.grouped_kl(student, teacher, [1.0] * 9, 1.0, 1.0)


@pytest.fixture
def fresh_build(monkeypatch, tmp_path):
    """``cpu_kernel.library()`` as on a new machine: an empty cache folder, nothing loaded yet."""
    monkeypatch.setenv('GDKD_KERNEL_CACHE', str(tmp_path))
    cpu_kernel.library.cache_clear()
    yield tmp_path
    monkeypatch.undo()
    cpu_kernel.library.cache_clear()


def test_build_lands_once_in_the_cache(fresh_build):
    assert cpu_kernel.library() is not None
    built = list(fresh_build.iterdir())
    assert len(built) == 1 and built[0].name.startswith('grouped_kl-') and built[0].suffix == '.so'
    stamp = built[0].stat().st_mtime_ns
    cpu_kernel.library.cache_clear()
    assert cpu_kernel.library() is not None
    assert list(fresh_build.iterdir()) == built and built[0].stat().st_mtime_ns == stamp


def test_missing_compiler_warns_and_falls_back(fresh_build, monkeypatch, kernel_calls):
    monkeypatch.setenv('CC', str(fresh_build / 'no-such-cc'))
    with pytest.warns(RuntimeWarning, match='could not build the fused CPU kernel.*no-such-cc'):
        assert cpu_kernel.library() is None
    student, teacher, gt = _inputs((2, 19, 4, 4), seed=9, dtype=torch.float32)
    loss, _ = gdkd_loss(student, teacher, gt)
    assert kernel_calls == []
    with cpu_kernel.switched_off():
        expected, _ = gdkd_loss(student, teacher, gt)
    assert torch.equal(loss, expected)


def test_switch_off_by_environment(fresh_build, monkeypatch):
    monkeypatch.setenv('GDKD_CPU_KERNEL', '0')
    assert cpu_kernel.library() is None
    assert list(fresh_build.iterdir()) == []
