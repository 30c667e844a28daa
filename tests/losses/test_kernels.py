"""The fused kernels of the grouped losses (CPU: C, GPU: Triton): that each is used where it should be, that it
computes what the PyTorch implementation computes on layouts and sizes the value tests in test_loss_functions.py
do not reach, and (CPU kernel) how it builds.

The Triton kernel runs on CPU tensors through Triton's interpreter (tests/conftest.py sets TRITON_INTERPRET=1). On
a GPU machine, ``TRITON_INTERPRET=0 pytest tests/losses/test_kernels.py`` runs the same tests with the compiled kernel
on CUDA tensors.
"""
import math
import os
import subprocess
import sys
from contextlib import contextmanager, nullcontext

import pytest
import torch

from gdkd_seg.benchmark.launches import count_launches
from gdkd_seg.losses import dkd_loss, gdkd3_loss, gdkd_loss, grouped_kd_loss, kd_loss
from gdkd_seg.losses.kernels import cpu, gpu
from tests.support import REPO_ROOT

TRITON_DEVICE = 'cpu' if gpu.interpreter_on() or not torch.cuda.is_available() else 'cuda'

LOSSES = {
    'gdkd-k1': lambda s, t, gt, T: gdkd_loss(s, t, gt, k=1, temperature=T),
    'gdkd-k3': lambda s, t, gt, T: gdkd_loss(s, t, gt, k=3, w0=0.7, w1=1.3, w2=2.0, temperature=T),
    'gdkd-kC': lambda s, t, gt, T: gdkd_loss(s, t, gt, k=s.shape[1], temperature=T),
    'gdkd-topp': lambda s, t, gt, T: gdkd_loss(s, t, gt, partition='topp', top_p=0.6, k_max=4, temperature=T),
    'gdkd3': lambda s, t, gt, T: gdkd3_loss(s, t, gt, k=4, w0=1.5, w1=0.5, w2=2.0, temperature=T),
    'dkd': lambda s, t, gt, T: dkd_loss(s, t, gt, alpha=1.0, beta=8.0, temperature=T),
    'kd': lambda s, t, gt, T: kd_loss(s, t, gt, temperature=T),
    # the authors' mass clamp, at an eps that these logits' masses cross
    'gdkd-k3-clamped': lambda s, t, gt, T: gdkd_loss(s, t, gt, k=3, temperature=T, mass_clamp=1e-3),
    'gdkd3-clamped': lambda s, t, gt, T: gdkd3_loss(s, t, gt, k=4, temperature=T, mass_clamp=1e-3),
    'dkd-clamped': lambda s, t, gt, T: dkd_loss(s, t, gt, temperature=T, mass_clamp=1e-3),
}
# spatial sizes that are not multiples of the kernels' pixel blocks, single pixels, and (N, C) rows
SHAPES = [(2, 19, 5, 7), (3, 19, 1, 1), (1, 150, 5, 13), (2, 5, 64, 3), (7, 19), (130, 6)]


@contextmanager
def pytorch_implementation():
    with cpu.switched_off(), gpu.switched_off():
        yield


class Kernel:
    """One fused kernel: the device its tensors live on, and the context in which the losses use it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.device = 'cpu' if name == 'cpu' else TRITON_DEVICE

    def __call__(self):
        if self.name == 'triton' and self.device == 'cpu':
            return gpu.interpreted_on_cpu()
        if self.name == 'cpu':
            assert cpu.library() is not None, 'the fused CPU kernel did not build (see the warning)'
        return nullcontext()


@pytest.fixture(params=['cpu', 'triton'])
def kernel(request) -> Kernel:
    return Kernel(request.param)


def _inputs(shape, seed, scale=3.0, dtype=torch.float64, device='cpu'):
    g = torch.Generator().manual_seed(seed)
    student = (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(device, dtype)
    teacher = (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(device, dtype)
    label_shape = (shape[0], *shape[2:])
    gt = torch.randint(0, shape[1], label_shape, generator=g)
    gt[torch.rand(label_shape, generator=g) < 0.25] = 255
    return student, teacher, gt.to(device)


def _loss_and_grad(fn, student, teacher, gt, T):
    student = student.detach().clone().requires_grad_()
    loss, parts = fn(student, teacher, gt, T)
    loss.backward()
    return loss.detach(), {name: value.detach() for name, value in parts.items()}, student.grad


@pytest.fixture
def kernel_calls(monkeypatch):
    """Calls of either kernel, by name."""
    calls = []
    for module, name in ((cpu, 'grouped_kl'), (gpu, 'launch')):
        run = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *args, _run=run, _module=module, **kwargs:
                            calls.append(_module.__name__.rsplit('.', 1)[1]) or _run(*args, **kwargs))
    return calls


def test_kernel_runs_the_losses(kernel, kernel_calls):
    for shape in [(2, 19, 4, 4), (6, 19)]:
        student, teacher, gt = _inputs(shape, 0, dtype=torch.float32, device=kernel.device)
        with kernel():
            for fn in LOSSES.values():
                fn(student, teacher, gt, 1.0)
    # the Triton kernel holds at most gpu.MAX_HEAD (16) head classes a pixel: top-k of all 19 goes elsewhere
    taken = len(LOSSES) - (kernel.name == 'triton')
    expected = 'cpu' if kernel.name == 'cpu' else 'gpu'
    assert [call for call in kernel_calls if call == expected] == [expected] * (2 * taken)
    calls = len(kernel_calls)
    with kernel(), pytorch_implementation():
        gdkd_loss(student, teacher, gt)
    assert len(kernel_calls) == calls


@pytest.mark.parametrize('shape', SHAPES, ids=['x'.join(map(str, s)) for s in SHAPES])
@pytest.mark.parametrize('name', list(LOSSES))
@pytest.mark.parametrize('T', [1.0, 2.5])
def test_kernel_matches_pytorch_implementation(kernel, name, shape, T):
    student, teacher, gt = _inputs(shape, seed=len(name) + shape[1], device=kernel.device)
    fn = LOSSES[name]
    with kernel():
        loss, parts, grad = _loss_and_grad(fn, student, teacher, gt, T)
    with pytorch_implementation():
        ref_loss, ref_parts, ref_grad = _loss_and_grad(fn, student, teacher, gt, T)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-10, atol=1e-12)
    for part in ref_parts:
        torch.testing.assert_close(parts[part], ref_parts[part], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-9, atol=1e-13)
    assert float(loss) > 0


@pytest.mark.parametrize('shape', [(2, 150, 16, 20), (37, 1000)], ids=['C150', 'C1000'])
def test_float32_kernel_matches_float64(kernel, shape):
    student, teacher, gt = _inputs(shape, seed=3, scale=10.0, device=kernel.device)
    with kernel():
        loss64, _, grad64 = _loss_and_grad(LOSSES['gdkd-k3'], student, teacher, gt, 1.0)
        loss32, _, grad32 = _loss_and_grad(LOSSES['gdkd-k3'], student.float(), teacher.float(), gt, 1.0)
    assert abs(float(loss32) - float(loss64)) <= 1e-6 * abs(float(loss64))
    torch.testing.assert_close(grad32.double(), grad64, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize('scale', [50.0, 1000.0])
def test_large_logits_match_float64_pytorch(kernel, scale):
    """Confident teachers (tail masses far below float32's range next to the top class) stay finite and exact."""
    student, teacher, gt = _inputs((2, 19, 6, 11), seed=10, scale=scale, device=kernel.device)
    with pytorch_implementation():
        ref = _loss_and_grad(LOSSES['gdkd-k3'], student, teacher, gt, 1.0)
    with kernel():
        loss, parts, grad = _loss_and_grad(LOSSES['gdkd-k3'], student.float(), teacher.float(), gt, 1.0)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    torch.testing.assert_close(loss.double(), ref[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad.double(), ref[2], rtol=1e-4, atol=1e-6 * float(ref[2].abs().max()))


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('name', ['gdkd-k3', 'dkd', 'kd'])
def test_half_logits_are_read_directly(kernel, name, dtype):
    """fp16/bf16 logits: computed in float32 from the same rounded values, gradient in the student's dtype."""
    student, teacher, gt = _inputs((2, 19, 5, 9), seed=11, scale=8.0, dtype=dtype, device=kernel.device)
    with kernel():
        loss, parts, grad = _loss_and_grad(LOSSES[name], student, teacher, gt, 1.0)
    ref = _loss_and_grad(LOSSES[name], student.float(), teacher.float(), gt, 1.0)
    assert grad.dtype == dtype
    torch.testing.assert_close(loss.float(), ref[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad.float(), ref[2], rtol=1e-2, atol=1e-2 * float(ref[2].abs().max()))


def test_non_contiguous_inputs(kernel):
    student, teacher, gt = _inputs((2, 19, 6, 8), seed=5, dtype=torch.float32, device=kernel.device)
    fn = LOSSES['gdkd-k3']
    with kernel():
        expected = _loss_and_grad(fn, student, teacher, gt, 1.0)
        channels_last = _loss_and_grad(fn, student.to(memory_format=torch.channels_last),
                                       teacher.to(memory_format=torch.channels_last), gt, 1.0)
        wide_s, wide_t = torch.cat([student, student], 3), torch.cat([teacher, teacher], 3)
        sliced = _loss_and_grad(fn, wide_s[..., ::2], wide_t[..., ::2], gt, 1.0)
        sliced_ref = _loss_and_grad(fn, wide_s[..., ::2].contiguous(), wide_t[..., ::2].contiguous(), gt, 1.0)
        rows = torch.randn(19, 11, device=kernel.device)
        transposed = _loss_and_grad(fn, rows.t(), rows.t().flip(1), None, 1.0)
        transposed_ref = _loss_and_grad(fn, rows.t().contiguous(), rows.t().flip(1).contiguous(), None, 1.0)
    torch.testing.assert_close(channels_last[0], expected[0])
    torch.testing.assert_close(channels_last[2], expected[2])
    torch.testing.assert_close(sliced[0], sliced_ref[0])
    torch.testing.assert_close(sliced[2], sliced_ref[2])
    torch.testing.assert_close(transposed[0], transposed_ref[0])
    torch.testing.assert_close(transposed[2], transposed_ref[2])


def test_reruns_are_bitwise_identical(kernel):
    student, teacher, gt = _inputs((2, 19, 33, 40), seed=12, dtype=torch.float32, device=kernel.device)
    with kernel():
        first = _loss_and_grad(LOSSES['gdkd-k3'], student, teacher, gt, 1.0)
        second = _loss_and_grad(LOSSES['gdkd-k3'], student, teacher, gt, 1.0)
    assert torch.equal(first[0], second[0]) and torch.equal(first[2], second[2])


def test_backward_twice_with_retained_graph(kernel):
    student, teacher, gt = _inputs((2, 19, 5, 5), seed=6, dtype=torch.float32, device=kernel.device)
    student.requires_grad_()
    with kernel():
        loss, _ = gdkd_loss(student, teacher, gt)
    loss.backward(retain_graph=True)
    first = student.grad.clone()
    loss.backward()
    torch.testing.assert_close(student.grad, 2 * first)


@pytest.mark.parametrize('where', ['student', 'teacher-pixel'])
def test_nan_logits_give_nan_not_zero(kernel, where):
    """A NaN must reach the loss (NonFiniteLossHook stops training on it), never vanish into an empty group."""
    student, teacher, gt = _inputs((1, 19, 3, 3), seed=7, dtype=torch.float32, device=kernel.device)
    if where == 'student':
        student[0, 5, 1, 1] = math.nan
    else:
        teacher[0, :, 1, 1] = math.nan  # a whole pixel: no class is ever larger, the top-k slots stay free
    gt.fill_(2)
    for name, fn in LOSSES.items():
        for reference in (False, True):
            with pytorch_implementation() if reference else kernel():
                loss, _ = fn(student, teacher, gt, 1.0)
            assert math.isnan(float(loss)), (name, reference)


def test_triton_kernel_leaves_more_groups_to_pytorch(kernel_calls):
    """Five groups are more than the Triton kernel takes: the PyTorch implementation computes them."""
    student, teacher, _ = _inputs((1, 19, 2, 3), seed=13, device=TRITON_DEVICE)
    args = (student, teacher, None, 1.0, (1.0, 0.5, 2.0, 1.5, 3.0), 1.0)
    options = dict(top_k=4, rank_groups=(0, 1, 2, 3))
    with Kernel('triton')():
        loss = grouped_kd_loss(*args, **options)[0]
    assert 'gpu' not in kernel_calls
    with pytorch_implementation():
        torch.testing.assert_close(loss, grouped_kd_loss(*args, **options)[0])


def test_triton_kernel_in_tiles_of_a_few_pixels(monkeypatch):
    """Many programs per image, each summing its own pixels: the per-program sums add up to the same loss."""
    monkeypatch.setitem(gpu.LAUNCH, 'interpreter_pixels' if TRITON_DEVICE == 'cpu' else 'pixels', 16)
    student, teacher, gt = _inputs((2, 19, 5, 7), seed=14, device=TRITON_DEVICE)
    for name in ('gdkd-k3', 'gdkd-topp', 'dkd'):
        with Kernel('triton')():
            loss, parts, grad = _loss_and_grad(LOSSES[name], student, teacher, gt, 1.0)
        with pytorch_implementation():
            ref_loss, ref_parts, ref_grad = _loss_and_grad(LOSSES[name], student, teacher, gt, 1.0)
        torch.testing.assert_close(loss, ref_loss, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(grad, ref_grad, rtol=1e-9, atol=1e-13)


def test_triton_switches(monkeypatch):
    """GDKD_TRITON_KERNEL=0 turns the kernel off; CPU tensors reach it only through the interpreter, else a clear
    error says how to get it."""
    student = torch.randn(1, 19, 2, 2, device=TRITON_DEVICE)
    with Kernel('triton')():
        assert gpu.supports(student, 2) and not gpu.supports(student, 5)
        monkeypatch.setenv('GDKD_TRITON_KERNEL', '0')
        gpu.available.cache_clear()
        try:
            assert not gpu.supports(student, 2)
        finally:
            monkeypatch.undo()
            gpu.available.cache_clear()
    monkeypatch.setenv('TRITON_INTERPRET', '0')
    with pytest.raises(RuntimeError, match='TRITON_INTERPRET=1'):
        gpu.interpreted_on_cpu()


@pytest.mark.parametrize('label_shape', [(5, 7), (10, 14), (17, 23), (3, 4)], ids=['same', 'x2', 'odd', 'smaller'])
@pytest.mark.parametrize('name', ['gdkd-k3', 'dkd', 'gdkd3-clamped'])
def test_triton_kernel_reads_labels_at_their_own_size(name, label_shape):
    """The kernel picks each pixel's label where F.interpolate(mode='nearest') does and leaves ignore_index out:
    the same loss and gradient as PyTorch on the resized labels, for labels of any integer dtype."""
    student, teacher, _ = _inputs((2, 19, 5, 7), seed=15, device=TRITON_DEVICE)
    generator = torch.Generator().manual_seed(16)
    gt = torch.randint(0, 19, (2, *label_shape), generator=generator)
    gt[torch.rand(gt.shape, generator=generator) < 0.3] = 255
    for labels in (gt, gt.to(torch.uint8), gt.to(torch.int32)[:, None]):
        with Kernel('triton')():
            loss, parts, grad = _loss_and_grad(LOSSES[name], student, teacher, labels.to(TRITON_DEVICE), 1.0)
        with pytorch_implementation():
            ref_loss, ref_parts, ref_grad = _loss_and_grad(LOSSES[name], student, teacher, gt, 1.0)
        torch.testing.assert_close(loss, ref_loss, rtol=1e-10, atol=1e-12)
        for part in ref_parts:
            torch.testing.assert_close(parts[part], ref_parts[part], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(grad, ref_grad, rtol=1e-9, atol=1e-13)


def test_triton_kernel_leaves_large_heads_to_pytorch(kernel_calls):
    """More head classes than the kernel holds in registers (top-k with k > 16, top-p without k_max at C=19) run the
    PyTorch implementation; 16 still run the kernel, and so does the shipped top-p config's k_max=10."""
    student, teacher, gt = _inputs((1, 19, 2, 3), seed=17, device=TRITON_DEVICE)
    for options, taken in ((dict(k=gpu.MAX_HEAD + 1), False), (dict(k=gpu.MAX_HEAD), True),
                           (dict(partition='topp', top_p=0.9), False), (dict(partition='topp', k_max=10), True)):
        kernel_calls.clear()
        with Kernel('triton')():
            loss = gdkd_loss(student, teacher, gt, **options)[0]
        assert (kernel_calls == ['gpu']) == taken, options
        with pytorch_implementation():
            torch.testing.assert_close(loss, gdkd_loss(student, teacher, gt, **options)[0])


@pytest.mark.parametrize('name', ['gdkd-k3', 'dkd', 'kd', 'gdkd3-clamped'])
def test_triton_forward_and_backward_is_three_launches(name):
    """A segmentation loss with labels at the crop size: the loss kernel (labels resized and masked in it), the
    means and backward's scaling; no other op on the device. ``loss.backward()``'s own ones_like is the caller's."""
    student, teacher, _ = _inputs((2, 19, 5, 7), seed=18, dtype=torch.float32, device=TRITON_DEVICE)
    gt = torch.randint(0, 19, (2, 40, 56)).to(TRITON_DEVICE)
    student.requires_grad_()
    upstream = torch.ones((), device=TRITON_DEVICE)

    def step():
        student.grad = None  # a second call would otherwise add to the gradient: one more launch, autograd's
        loss, _ = LOSSES[name](student, teacher, gt, 1.0)
        loss.backward(upstream)

    with Kernel('triton')():
        assert count_launches(step, TRITON_DEVICE) == 3


HOPPER_CHECKS = """
import sys
import torch
from gdkd_seg.benchmark.sass import cuobjdump, compile_for_hopper
from gdkd_seg.losses.inputs import LabelMap
from gdkd_seg.losses.kernels import gpu

g = torch.Generator().manual_seed(0)
def logits(shape, dtype):
    return torch.randn(shape, generator=g).to(dtype)
labels = lambda shape: torch.randint(0, 19, shape, generator=g)
student = logits((2, 19, 8, 16), torch.float32)
gdkd, gdkd3, kd = (1.0, 2.0), (0.0, 1.0, 2.0), (1.0,)
variants = [  # (student, teacher, valid, group weights, options)
    (student, student, LabelMap(labels((2, 64, 128)), student, 255), gdkd, dict(top_k=3, rank_groups=(0, 0, 0))),
    (student, student, None, gdkd, dict(top_k=3, rank_groups=(0, 0, 0), mass_clamp=1e-3)),
    (logits((2, 19, 8, 16), torch.bfloat16), logits((2, 19, 8, 16), torch.bfloat16), None, gdkd3,
     dict(top_k=4, rank_groups=(0, 1, 1, 1), mass_clamp=1e-3)),
    (student, student, LabelMap(labels((2, 8, 16)), student, 255), gdkd, dict(head_from_labels=True)),
    (logits((37, 150), torch.float64), logits((37, 150), torch.float64), torch.ones(37, dtype=torch.bool), gdkd,
     dict(head_indices=torch.zeros(37, 4, dtype=torch.long), head_groups=torch.zeros(37, 4, dtype=torch.long))),
    (student.to(memory_format=torch.channels_last), student, None, kd, dict()),
    (logits((2, 19, 8, 16), torch.float16), logits((2, 19, 8, 16), torch.float16), None, gdkd, dict(with_grad=False)),
    (student, student, None, gdkd, dict(top_k=gpu.MAX_HEAD, rank_groups=(0,) * gpu.MAX_HEAD)),
    (student, student, None, gdkd, dict(head_indices=torch.zeros(2, gpu.MAX_HEAD, 8, 16, dtype=torch.long),
                                        head_groups=torch.zeros(2, gpu.MAX_HEAD, 8, 16, dtype=torch.long))),
]
for student_logits, teacher_logits, valid, groups, options in variants:
    _, args, constants, _, _ = gpu.kernel_arguments(student_logits, teacher_logits, valid, groups, 1.0, 2.0,
                                                    pixels=gpu.LAUNCH['pixels'], **options)
    cubin = compile_for_hopper(gpu.kernels().grouped_kl_kernel, args, constants).asm['cubin']
    assert 'LOCAL:0 ' in cuobjdump(cubin, '-res-usage'), (constants, 'spills to local memory')
print('compiled')
"""


def test_triton_kernel_compiles_for_hopper():
    """The interpreter runs the kernel's Python; this compiles it (Triton's front end, PTX, ptxas) for an H100/H200
    (sm_90), which needs no GPU, in each of its variants: errors only the compiler sees fail here, not on a user's
    machine; with as many head classes as it takes, no register spills. (Its cost per logit: tests/benchmark,
    ``benchmark_losses.py --sass``.)"""
    env = dict(os.environ, TRITON_INTERPRET='0', PYTHONPATH=REPO_ROOT)
    result = subprocess.run([sys.executable, '-c', HOPPER_CHECKS], env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0 and 'compiled' in result.stdout, result.stderr[-3000:]


# --------------------------------------------------------------------------------------------------------------
# The CPU kernel alone: threads, limits, build
# --------------------------------------------------------------------------------------------------------------
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


def test_too_many_groups_is_refused():
    student, teacher, _ = _inputs((1, 19, 2, 2), seed=8, dtype=torch.float32)
    with pytest.raises(RuntimeError, match='more than 8 class groups'):
        cpu.grouped_kl(student, teacher, [1.0] * 9, 1.0, 1.0)


@pytest.fixture
def fresh_build(monkeypatch, tmp_path):
    """``cpu.library()`` as on a new machine: an empty cache folder, nothing loaded yet."""
    monkeypatch.setenv('GDKD_KERNEL_CACHE', str(tmp_path))
    cpu.library.cache_clear()
    yield tmp_path
    monkeypatch.undo()
    cpu.library.cache_clear()


def test_build_lands_once_in_the_cache(fresh_build):
    assert cpu.library() is not None
    built = list(fresh_build.iterdir())
    assert len(built) == 1 and built[0].name.startswith('grouped_kl-') and built[0].suffix == '.so'
    stamp = built[0].stat().st_mtime_ns
    cpu.library.cache_clear()
    assert cpu.library() is not None
    assert list(fresh_build.iterdir()) == built and built[0].stat().st_mtime_ns == stamp


def test_missing_compiler_warns_and_falls_back(fresh_build, monkeypatch, kernel_calls):
    monkeypatch.setenv('CC', str(fresh_build / 'no-such-cc'))
    with pytest.warns(RuntimeWarning, match='could not build the fused CPU kernel.*no-such-cc'):
        assert cpu.library() is None
    student, teacher, gt = _inputs((2, 19, 4, 4), seed=9, dtype=torch.float32)
    loss, _ = gdkd_loss(student, teacher, gt)
    assert kernel_calls == []
    with cpu.switched_off():
        expected, _ = gdkd_loss(student, teacher, gt)
    assert torch.equal(loss, expected)


def test_switch_off_by_environment(fresh_build, monkeypatch):
    monkeypatch.setenv('GDKD_CPU_KERNEL', '0')
    assert cpu.library() is None
    assert list(fresh_build.iterdir()) == []
