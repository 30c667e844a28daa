"""How fast a config's training pipeline makes images on this machine, and how many loader workers keep a GPU fed.

A data loader with ``num_workers`` worker processes delivers about ``num_workers x images_per_second`` images per
second, where ``images_per_second`` is what one worker (one core) gets through the dataset's pipeline (load, decode,
augment, pack). Training is data-bound when a batch takes longer to make than the GPU takes to train on it.
"""
import copy
import math
import os.path as osp
import tempfile
import time
from dataclasses import dataclass
from typing import Tuple

import cv2
import torch
from mmengine.config import Config
from mmseg.registry import DATASETS

from ..datasets.toy_cityscapes import make_toy_cityscapes
from ..utils.errors import ConfigError
from ..utils.tables import markdown_table

# Workers to spare beyond the bare estimate: real photos decode slower than the toy city's flat PNGs, images and
# augmentations vary, and the main process also collates and pins the batches.
WORKER_HEADROOM = 1.25
RESIZE_TRANSFORMS = ('Resize', 'RandomResize', 'RandomChoiceResize')


@dataclass
class PipelineSpeed:
    """One worker's speed through a training pipeline.

    Attributes:
        images_per_second: images one worker (one core) makes per second.
        samples: images timed.
        source: where the images came from (the config's data root, or a toy city made for the measurement).
    """
    images_per_second: float
    samples: int
    source: str


def native_image_size(cfg: Config) -> Tuple[int, int]:
    """``(H, W)`` of the images the config trains on: the ``scale`` of the training pipeline's first resize, which
    MMSeg's configs set to the dataset's own size (Cityscapes: 2048 x 1024, w x h).

    Raises:
        ConfigError: when the pipeline has no resize with a ``scale`` to read.
    """
    for transform in cfg.train_dataloader.dataset.get('pipeline', []):
        scale = transform.get('scale')
        if transform.get('type') in RESIZE_TRANSFORMS and isinstance(scale, (tuple, list)) and len(scale) == 2:
            width, height = scale
            return int(height), int(width)
    raise ConfigError('the training pipeline has no Resize / RandomResize with a (w, h) scale to make toy images of '
                      'its size; point train_dataloader.dataset.data_root at the real dataset instead '
                      '(--cfg-options train_dataloader.dataset.data_root=PATH)')


def time_pipeline(cfg: Config, samples: int, toy_images: int = 4) -> PipelineSpeed:
    """Time ``samples`` images through the config's training dataset and pipeline in this process, as one loader
    worker runs them (one torch thread, no OpenCV threads, as MMEngine's workers), after one warm-up image.

    The images come from the config's ``train_dataloader.dataset`` when its ``data_root`` exists; otherwise from
    ``toy_images`` toy-city images generated (in the Cityscapes layout) at the pipeline's image size into a
    temporary folder, cycled through. Toy images are flat-coloured PNGs that decode faster than real photos.

    Args:
        cfg: a segmentation config (``default_scope='mmseg'``) with a ``train_dataloader``.
        samples: images to time (>= 1).
        toy_images: images to generate when the data root is missing.

    Returns:
        The worker's speed and where its images came from.
    """
    if samples < 1:
        raise ConfigError(f'samples must be >= 1, got {samples}')
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    data_root = dataset_cfg.get('data_root') or ''
    with tempfile.TemporaryDirectory() as tmp:
        if data_root and osp.isdir(data_root):
            source = f'{data_root} ({dataset_cfg.type})'
        else:
            size = native_image_size(cfg)
            started = time.perf_counter()
            make_toy_cityscapes(tmp, num_train=toy_images, num_val=0, size=size, progress=False)
            source = (f'toy city, {toy_images} images of {size[0]}x{size[1]} generated in '
                      f'{time.perf_counter() - started:.1f} s ({data_root or "no data_root"} not found)')
            dataset_cfg.data_root = tmp
        dataset = DATASETS.build(dataset_cfg)
        if len(dataset) == 0:
            raise ConfigError(f'the training dataset under {dataset_cfg.data_root!r} has no images')
        return PipelineSpeed(_images_per_second(dataset, samples), samples, source)


def _images_per_second(dataset, samples: int) -> float:
    threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(0)  # as MMEngine sets it for the loader: no OpenCV threads
    try:
        dataset[0]  # warm-up: first reads, lazy initialisation
        started = time.perf_counter()
        for index in range(samples):
            dataset[index % len(dataset)]
        return samples / (time.perf_counter() - started)
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv2_threads)


def workers_needed(batch_size: int, step_seconds: float, images_per_second: float,
                   headroom: float = WORKER_HEADROOM) -> int:
    """Loader workers (per GPU process) that make a batch of ``batch_size`` within ``step_seconds``, with
    ``headroom``: ``ceil(headroom x batch_size / (step_seconds x images_per_second))``."""
    return math.ceil(headroom * batch_size / (step_seconds * images_per_second))


def data_bound_report(speed: PipelineSpeed, batch_size: int, step_seconds: float, num_workers: int,
                      step_name: str = 'distill step') -> str:
    """A markdown table: one worker's speed, the config's loader against the GPU step, and the workers it needs.

    Args:
        speed: from :func:`time_pipeline`.
        batch_size: images per step (per GPU).
        step_seconds: the measured training step at that batch.
        num_workers: the config's ``train_dataloader.num_workers`` (0: the main process loads, between steps).
        step_name: what ``step_seconds`` timed.
    """
    ms_per_image = 1000 / speed.images_per_second
    if num_workers > 0:
        batch_ms = 1000 * batch_size / (num_workers * speed.images_per_second)
        bound = batch_ms > 1000 * step_seconds
        loader = f'{batch_ms:.1f} ms per batch of {batch_size} ({num_workers} workers in parallel)'
    else:  # the main process makes each batch between the steps: the two add up
        bound = True
        loader = f'{batch_size * ms_per_image:.1f} ms per batch of {batch_size}, in the main process between steps'
    needed = workers_needed(batch_size, step_seconds, speed.images_per_second)
    rows = [
        ('images', speed.source),
        ('one worker', f'{speed.images_per_second:.1f} images/s ({ms_per_image:.1f} ms per image, '
                       f'{speed.samples} images, 1 thread)'),
        (f'loader, num_workers={num_workers}', loader),
        (step_name, f'{1000 * step_seconds:.1f} ms per batch of {batch_size}'),
        ('workers that keep up', f'{needed} per GPU process (with x{WORKER_HEADROOM} headroom; G GPUs need G x '
                                 f'{needed} cores)'),
        ('verdict', f'**data-bound**: the GPU waits for data; set num_workers >= {needed}' if bound else
                    'not data-bound'),
    ]
    return markdown_table(['data loading', ''], rows)
