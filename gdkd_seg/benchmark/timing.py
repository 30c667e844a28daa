"""Wall-clock timing of steps on CPUs and GPUs: medians after warm-up, several variants alternating."""
import statistics
import time
from typing import Callable, Dict

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
