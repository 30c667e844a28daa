"""A distillation step against its parts (the logic of ``tools/analysis_tools/benchmark_distill_step.py``).

Times, in one run and on the same random batch: the student's plain training step (forward, its own losses,
backward, SGD step); the teacher's no-grad forward (decode-head logits) at the distiller's teacher precision; and
the full distillation step (the above plus the distillation losses), as training runs it. Goal: distill /
(student + teacher) <= 1.05.
"""
import time
from typing import Dict, Optional, Sequence

import torch
from mmengine.config import Config

from ..utils.tables import markdown_table
from .distiller import build_seg_distiller, crop_size, random_seg_batch
from .timing import median_seconds


def time_distill_step(cfg: Config, device: str, batch: int, repeats: int, crop: Optional[Sequence[int]] = None,
                      teacher_ckpt: Optional[str] = None, model_options: Optional[dict] = None) -> Dict[str, float]:
    """Median seconds of the ``student`` step, the ``teacher`` forward and the ``distill`` step, and ``ratio`` =
    distill / (student + teacher); on CUDA also ``peak_mib``, the distill step's peak memory. ``build`` is the
    distiller's build time. Arguments as :func:`gdkd_seg.benchmark.distiller.build_seg_distiller`;
    ``crop`` (H, W) defaults to the config's."""
    crop = crop_size(cfg, crop)
    started = time.perf_counter()
    distiller = build_seg_distiller(cfg, device, teacher_ckpt, model_options)
    result = {'build': time.perf_counter() - started}
    student = distiller.student
    optimizer = torch.optim.SGD(student.parameters(), lr=1e-4, momentum=0.9)
    inputs, samples = random_seg_batch(batch, crop, student.num_classes, device)

    def train_step(losses_of) -> None:
        optimizer.zero_grad()
        sum(value for key, value in losses_of(inputs, samples).items() if 'loss' in key).backward()
        optimizer.step()

    result['student'] = median_seconds(lambda: train_step(student.loss), repeats, device)
    result['teacher'] = median_seconds(lambda: distiller.teacher_logits(inputs), repeats, device)
    if torch.device(device).type == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    result['distill'] = median_seconds(lambda: train_step(distiller.loss), repeats, device)
    if torch.device(device).type == 'cuda':
        result['peak_mib'] = torch.cuda.max_memory_allocated() / 2 ** 20
    result['ratio'] = result['distill'] / (result['student'] + result['teacher'])
    result.update(crop=crop, teacher_precision=distiller.teacher_precision,
                  teacher_channels_last=distiller.teacher_channels_last)
    return result


def step_table(result: dict) -> str:
    """The markdown table of :func:`time_distill_step`'s result."""
    rows = [[name, f'{result[name] * 1000:.1f}'] for name in ('student', 'teacher', 'distill')]
    rows.append(['distill / (student + teacher)', f'{result["ratio"]:.3f}'])
    if 'peak_mib' in result:
        rows.append(['distill step peak memory (MiB)', f'{result["peak_mib"]:.0f}'])
    return markdown_table(['step', 'ms'], rows)
