"""Timing of steps on CPUs and GPUs, several variants alternating so that a slow phase of a shared machine hits all
of them alike: wall-clock medians with the device waited for around every call (:func:`median_times`), GPU and host
time per call of back-to-back calls from CUDA events (:func:`event_times`), and a device's copy bandwidth
(:func:`copy_bandwidth`)."""
import statistics
import time
from typing import Callable, Dict, Tuple

import torch


def synchronize(device: str) -> None:
    """Wait for the device's queued work (GPU kernels run asynchronously); nothing to wait for on CPUs."""
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize()


def median_times(steps: Dict[str, Callable[[], object]], repeats: int, device: str,
                 warmup: int = 1) -> Dict[str, float]:
    """The median wall time in seconds of each step over ``repeats`` calls, after ``warmup`` untimed calls of each,
    waiting for the device around every call. The steps alternate call by call, so that a slow phase of a shared
    machine hits all of them alike."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            synchronize(device)
            started = time.perf_counter()
            step()
            synchronize(device)
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def median_seconds(step: Callable[[], object], repeats: int, device: str) -> float:
    """The median wall time of ``repeats`` calls of ``step`` after one warm-up call, waiting for the device."""
    return median_times({'step': step}, repeats, device)['step']


def event_times(steps: Dict[str, Callable[[], object]], repeats: int, rounds: int = 5,
                warmup: int = 1) -> Dict[str, Tuple[float, float]]:
    """GPU and host seconds per call of each step when ``repeats`` calls run back to back, as in training, where the
    host queues the next kernels while the GPU runs the last ones.

    A round of a step: wait for the GPU, record a CUDA event, make the ``repeats`` calls without waiting, record an
    event, wait. GPU time per call: the events' elapsed time / ``repeats`` (when the host queues slower than the GPU
    runs, the GPU idles between kernels and this is the host's pace: the time a training step would see). Host time
    per call: the host's time from before the first call until the last returned, before the final wait, /
    ``repeats``. ``rounds`` rounds, the steps alternating round by round, after ``warmup`` untimed calls of each.

    Args:
        steps: name -> a call without arguments that queues work on the current CUDA device.
        repeats: calls a round.
        rounds: rounds a step.
        warmup: untimed calls of each step first.

    Returns:
        name -> (median GPU seconds per call, median host seconds per call) over the rounds.
    """
    for _ in range(warmup):
        for step in steps.values():
            step()
    samples = {name: ([], []) for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            started = time.perf_counter()
            for _ in range(repeats):
                step()
            host = time.perf_counter() - started
            end.record()
            torch.cuda.synchronize()
            samples[name][0].append(start.elapsed_time(end) / 1e3 / repeats)  # elapsed_time is in ms
            samples[name][1].append(host / repeats)
    return {name: (statistics.median(gpu), statistics.median(host)) for name, (gpu, host) in samples.items()}


def copy_bandwidth(device: str, nbytes: int, repeats: int = 5) -> float:
    """The device's memory bandwidth as a copy sees it: bytes read + written per second by ``dst.copy_(src)`` of
    ``nbytes`` (choose it well beyond the caches), the best of ``repeats`` copies after one warm-up. Timed with CUDA
    events on CUDA, with the wall clock on CPU (the copy uses PyTorch's threads).

    Args:
        device: ``'cpu'`` or ``'cuda'``.
        nbytes: bytes copied.
        repeats: copies timed.

    Returns:
        ``2 * nbytes / seconds`` of the fastest copy.
    """
    src = torch.ones(nbytes, dtype=torch.uint8, device=device)  # written, so that its pages exist before timing
    dst = torch.empty_like(src)
    dst.copy_(src)
    best = float('inf')
    for _ in range(repeats):
        if torch.device(device).type == 'cuda':
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            dst.copy_(src)
            end.record()
            torch.cuda.synchronize()
            seconds = start.elapsed_time(end) / 1e3
        else:
            started = time.perf_counter()
            dst.copy_(src)
            seconds = time.perf_counter() - started
        best = min(best, seconds)
    return 2 * nbytes / best
