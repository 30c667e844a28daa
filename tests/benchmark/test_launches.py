"""Launch counting: operators that compute count one each, allocations and views none, kernel launches through the
kernels' own entry points one each (and not the PyTorch work they do inside); the CUDA-event timer."""
import time
from types import SimpleNamespace

import pytest
import torch

from gdkd_seg.benchmark import launches as launches_module
from gdkd_seg.benchmark.launches import count_launches
from gdkd_seg.benchmark.losses import _step, make_inputs, ours_gdkd
from gdkd_seg.benchmark.timing import event_times
from gdkd_seg.losses.kernels import cpu, gpu

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')


def test_operators_that_compute_count_one_each_on_cpu():
    x = torch.randn(4, 5)
    assert count_launches(lambda: torch.ones(8) * 2, 'cpu') == 2  # a fill and a multiply
    assert count_launches(lambda: x.add_(1), 'cpu') == 1
    assert count_launches(lambda: x.t().contiguous(), 'cpu') == 1  # the copy, not the transpose
    assert count_launches(lambda: x.sum().item(), 'cpu') == 2  # the reduction and the device-to-host read


def test_views_and_allocations_count_none_on_cpu():
    x = torch.randn(4, 5)
    assert count_launches(lambda: x.t().unsqueeze(0).expand(3, 5, 4)[1:, 2], 'cpu') == 0
    assert count_launches(lambda: x.reshape(2, 10), 'cpu') == 0  # a view where the strides allow
    assert count_launches(lambda: x.t().reshape(20), 'cpu') == 1  # and a copy where not
    assert count_launches(lambda: (x.detach(), x.view(20), x.permute(1, 0), x.split(2)), 'cpu') == 0
    assert count_launches(lambda: (torch.empty(8), torch.empty_like(x), x.new_empty(3)), 'cpu') == 0
    assert count_launches(lambda: torch.empty(8).fill_(1.0), 'cpu') == 1


def test_a_triton_launch_counts_one_and_not_the_torch_work_inside_it(monkeypatch):
    calls = []

    def fake_launch_kernel(kernel, grid, *args, **kwargs):
        calls.append(grid)
        out, = args
        out.copy_(torch.ones(3) * 2 + 1)  # what the interpreter does: PyTorch work that is no launch

    monkeypatch.setattr(gpu, 'launch_kernel', fake_launch_kernel, raising=False)
    out = torch.zeros(3)

    def step():
        gpu.launch_kernel(None, (1,), out)
        gpu.launch_kernel(None, (2,), out)
        return out * 2

    assert count_launches(step, 'cpu') == 3  # two launches and the multiply
    assert calls == [(1,), (2,)] and out.tolist() == [3.0, 3.0, 3.0]  # the real launch ran
    assert gpu.launch_kernel is fake_launch_kernel  # put back


@pytest.mark.skipif(not (gpu.interpreter_on() and gpu.available()), reason="needs Triton's interpreter")
def test_the_interpreted_triton_loss_counts_its_kernels(monkeypatch):
    launches = []
    real = gpu.launch_kernel

    def spy(kernel, grid, *args, **kwargs):
        launches.append(kernel)
        return real(kernel, grid, *args, **kwargs)

    monkeypatch.setattr(gpu, 'launch_kernel', spy)
    student, teacher = make_inputs((2, 19, 8, 16), 1.0, 'cpu')
    with gpu.interpreted_on_cpu(), cpu.switched_off():
        count = count_launches(lambda: _step(ours_gdkd, student, teacher), 'cpu')
    # the fused path computes nothing with PyTorch besides its kernels but autograd's seed of backward (ones_like);
    # the interpreter's own copies, dozens, are not counted
    assert launches and count == len(launches) + 1, (count, launches)


@pytest.mark.skipif(cpu.library() is None, reason='the fused C kernel is not built')
def test_a_call_of_the_fused_c_kernel_counts_one():
    student, teacher = make_inputs((2, 19, 8, 16), 1.0, 'cpu')
    count = count_launches(lambda: cpu.grouped_kl(student.detach(), teacher, [1.0, 2.0], 1.0, 1.0, top_k=3,
                                                  rank_groups=(0, 0, 0)), 'cpu')
    assert count == 1  # its outputs are allocations, its options lifted host tensors


def test_the_gpu_trace_counts_kernels_memsets_and_memcpys_only(monkeypatch):
    """The CUDA count's reading of the profiler's events, on a recorded trace (no GPU needed)."""
    trace = []

    class FakeProfile:
        def __init__(self, activities):
            assert set(activities) == {torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA}

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            return False

        def events(self):
            return [SimpleNamespace(name=name, activity_type=kind) for name, kind in trace]

    calls = []
    monkeypatch.setattr(launches_module, 'profile', FakeProfile)
    monkeypatch.setattr(torch.cuda, 'synchronize', lambda: calls.append('sync'))
    trace[:] = [('aten::mul', 'cpu_op'), ('cudaLaunchKernel', 'cuda_runtime'), ('elementwise_kernel', 'kernel'),
                ('cuLaunchKernel', 'cuda_driver'), ('grouped_kl_kernel', 'kernel'), ('Memset (Device)', 'gpu_memset'),
                ('Memcpy DtoH (Device -> Pageable)', 'gpu_memcpy'), ('my range', 'gpu_user_annotation'),
                ('Stream Sync', 'cuda_sync')]
    assert count_launches(lambda: calls.append('step'), 'cuda') == 4
    assert calls == ['step', 'sync', 'step', 'sync']  # a warm-up call, then the traced one, each waited for
    trace[:] = [('aten::view', 'cpu_op')]
    assert count_launches(lambda: None, 'cuda') == 0  # nothing launched, nothing run
    trace[:] = [('aten::mul', 'cpu_op'), ('cudaLaunchKernel', 'cuda_runtime')]
    with pytest.raises(RuntimeError, match='saw 1 launch calls .cudaLaunchKernel, .... but no GPU activity'):
        count_launches(lambda: None, 'cuda')  # the profiler did not trace the GPU: no count rather than 0


def test_event_times_alternates_rounds_and_leaves_the_final_wait_out_of_host_time(monkeypatch):
    """:func:`event_times`' bookkeeping with CUDA events and waits played by the wall clock (no GPU needed)."""

    class FakeEvent:
        def __init__(self, enable_timing):
            assert enable_timing

        def record(self):
            self.at = time.perf_counter()

        def elapsed_time(self, end):
            return 1e3 * (end.at - self.at)  # milliseconds, as CUDA events give them

    monkeypatch.setattr(torch.cuda, 'Event', FakeEvent)
    monkeypatch.setattr(torch.cuda, 'synchronize', lambda: time.sleep(0.05))  # a queue that takes 50 ms to drain
    order = []
    steps = {'slow': lambda: (order.append('slow'), time.sleep(0.002)), 'fast': lambda: order.append('fast')}
    times = event_times(steps, repeats=4, rounds=3, warmup=1)
    assert order == ['slow', 'fast'] + (['slow'] * 4 + ['fast'] * 4) * 3
    gpu_s, host_s = times['slow']
    assert 0.002 <= host_s < 0.01  # per call, without the 50 ms wait (12.5 ms a call if it were counted)
    assert host_s <= gpu_s < 0.01
    assert times['fast'][1] < 0.001


@needs_cuda
def test_the_gpu_trace_counts_kernels_and_copies():
    x = torch.randn(4, 5, device='cuda')
    assert count_launches(lambda: torch.ones(8, device='cuda') * 2, 'cuda') == 2
    assert count_launches(lambda: x.t().unsqueeze(0), 'cuda') == 0
    assert count_launches(lambda: x.to('cpu'), 'cuda') == 1  # a memcpy


@needs_cuda
def test_event_times_separates_gpu_time_from_host_time():
    def gpu_bound():
        torch.cuda._sleep(2_000_000)  # a kernel spinning ~1 ms at ~2 GHz, queued in microseconds

    def host_bound():
        time.sleep(0.002)
        torch.ones(1, device='cuda')

    times = event_times({'gpu': gpu_bound, 'host': host_bound}, repeats=5, rounds=3, warmup=1)
    gpu_s, host_s = times['gpu']
    assert gpu_s > 5 * host_s  # the host queued ahead while the GPU ran
    gpu_s, host_s = times['host']
    assert host_s >= 0.002 and gpu_s >= 0.9 * host_s  # the GPU waited for the host between calls
