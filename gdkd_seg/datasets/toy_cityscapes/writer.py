"""Writing generated scenes to disk in the exact Cityscapes layout, with a summary of what was written."""
import os
import shutil
import time
import warnings
import zlib
from typing import Dict, Iterable, Optional, Sequence, Tuple

import cv2
import numpy as np

from .classes import CITYSCAPES_CLASSES, IGNORE_INDEX
from .scene import draw_scene

DEFAULT_SIZE: Tuple[int, int] = (128, 256)
DEFAULT_NUM_TRAIN = 200
DEFAULT_NUM_VAL = 50
DEFAULT_CITIES: Dict[str, Tuple[str, ...]] = {'train': ('toyville', 'gridtown'), 'val': ('testburg', )}

# Cityscapes names each annotated image after the 20th frame (index 19) of a 30-frame snippet.
_ANNOTATED_FRAME = 19


def scene_generator(seed: int, split: str, index: int) -> np.random.Generator:
    """The random generator that draws image ``index`` of ``split`` in the dataset made with ``seed``.

    It depends on (seed, split, index) only, so any subset of images, in any order, regenerates identically.

    Args:
        seed: Non-negative base seed of the dataset.
        split: Split name, e.g. ``'train'``; it enters through a stable CRC32 (``hash`` is salted per process).
        index: Index of the image within its split.

    Returns:
        A fresh ``numpy.random.Generator``; pass it to :func:`draw_scene`.
    """
    return np.random.default_rng([seed, zlib.crc32(split.encode('utf-8')), index])


def _progress_bar(total: int, enabled: bool):
    """MMEngine's progress bar, or a no-op stand-in (tqdm is not a dependency)."""
    if enabled and total > 0:
        try:
            from mmengine.utils import ProgressBar
            return ProgressBar(total)
        except ImportError:
            pass

    class _Silent:

        def update(self, num_tasks: int = 1) -> None:
            pass

    return _Silent()


def make_toy_cityscapes(out_dir: str, num_train: int = DEFAULT_NUM_TRAIN, num_val: int = DEFAULT_NUM_VAL,
                        size: Tuple[int, int] = DEFAULT_SIZE, seed: int = 0, progress: bool = True,
                        cities: Optional[Dict[str, Sequence[str]]] = None, overwrite: bool = False) -> dict:
    """Generate a toy street-scene dataset in the exact layout MMSeg's ``CityscapesDataset`` reads.

    Writes ``leftImg8bit/<split>/<city>/<city>_<seq:06d>_000019_leftImg8bit.png`` (RGB images) and
    ``gtFine/<split>/<city>/<city>_<seq:06d>_000019_gtFine_labelTrainIds.png`` (single-channel uint8 train IDs,
    255 void) under ``out_dir``, where ``seq`` is the image's index within its split. Each split's images are
    divided among its cities in consecutive blocks. Every image is drawn from a generator seeded by
    ``(seed, split, index)``, so the same arguments write byte-identical files. Split folders that already hold
    files are refused, since the dataset would read the old files beside the new ones, unless ``overwrite`` is set:
    then those split folders are deleted first. Other folders under ``out_dir`` are left alone.

    Args:
        out_dir: Dataset root, e.g. ``data/toy_cityscapes``; created if missing.
        num_train: Number of training images (default 200).
        num_val: Number of validation images (default 50).
        size: ``(height, width)`` of every image (default (128, 256)).
        seed: Non-negative base seed.
        progress: Show a progress bar on stdout.
        cities: City names per split; default ``{'train': ('toyville', 'gridtown'), 'val': ('testburg',)}``.
        overwrite: Replace the train and val splits when ``out_dir`` already holds files there.

    Returns:
        A summary: ``out_dir``, ``size``, ``seed``, ``num_images`` per split, ``class_pixels`` (pixel count per
        class name, over all splits), ``class_images`` (number of images containing each class),
        ``ignore_pixels``, ``classes_present`` (names of classes with any pixels), ``removed_files`` (files of the
        replaced splits) and ``seconds``.

    Raises:
        FileExistsError: when a split folder already holds files and ``overwrite`` is not set.
    """
    height, width = (int(v) for v in size)
    if num_train < 0 or num_val < 0:
        raise ValueError(f'image counts must be non-negative, got num_train={num_train}, num_val={num_val}')
    if seed < 0:
        raise ValueError(f'seed must be non-negative, got {seed}')
    cities = dict(DEFAULT_CITIES if cities is None else cities)
    counts = {'train': int(num_train), 'val': int(num_val)}
    removed_files = _clear_splits(out_dir, counts, overwrite)
    pixel_counts = np.zeros(256, np.int64)
    image_counts = np.zeros(256, np.int64)
    started = time.perf_counter()
    bar = _progress_bar(sum(counts.values()), progress)
    for split, count in counts.items():
        split_cities = list(cities[split])
        if count and not split_cities:
            raise ValueError(f'no city names given for split {split!r}')
        for index in range(count):
            city = split_cities[index * len(split_cities) // count]
            stem = f'{city}_{index:06d}_{_ANNOTATED_FRAME:06d}'
            image, label = draw_scene(scene_generator(seed, split, index), height, width)
            image_dir = os.path.join(out_dir, 'leftImg8bit', split, city)
            label_dir = os.path.join(out_dir, 'gtFine', split, city)
            os.makedirs(image_dir, exist_ok=True)
            os.makedirs(label_dir, exist_ok=True)
            # OpenCV writes BGR; converting keeps the file's colours the scene's colours.
            _write_png(os.path.join(image_dir, f'{stem}_leftImg8bit.png'), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            _write_png(os.path.join(label_dir, f'{stem}_gtFine_labelTrainIds.png'), label)
            histogram = np.bincount(label.ravel(), minlength=256)
            pixel_counts += histogram
            image_counts += histogram > 0
            bar.update()
    if progress and sum(counts.values()):
        print()  # MMEngine's bar leaves the cursor at the end of its line
    present = [name for train_id, name in enumerate(CITYSCAPES_CLASSES) if pixel_counts[train_id] > 0]
    if len(present) < 10 and sum(counts.values()) >= 20:
        warnings.warn(f'only {len(present)} classes appear in the generated set: {present}')
    return {
        'out_dir': os.path.abspath(out_dir),
        'size': (height, width),
        'seed': seed,
        'num_images': counts,
        'class_pixels': {
            name: int(pixel_counts[i])
            for i, name in enumerate(CITYSCAPES_CLASSES)
        },
        'class_images': {
            name: int(image_counts[i])
            for i, name in enumerate(CITYSCAPES_CLASSES)
        },
        'ignore_pixels': int(pixel_counts[IGNORE_INDEX]),
        'classes_present': present,
        'removed_files': removed_files,
        'seconds': round(time.perf_counter() - started, 2),
    }


def _clear_splits(out_dir: str, splits: Iterable[str], overwrite: bool) -> int:
    """Refuse (or with ``overwrite`` delete) the ``leftImg8bit/<split>`` and ``gtFine/<split>`` folders of ``splits``
    that already hold files; returns the number of files deleted."""
    folders = [os.path.join(out_dir, kind, split) for kind in ('leftImg8bit', 'gtFine') for split in splits]
    held = {folder: sum(len(files) for _, _, files in os.walk(folder)) for folder in folders}
    held = {folder: count for folder, count in held.items() if count}
    if held and not overwrite:
        listed = ', '.join(f'{folder} ({count} files)' for folder, count in held.items())
        raise FileExistsError(f'{out_dir} already holds a dataset: {listed}. The new images would be read beside '
                              'the old ones; choose another output folder, or replace these splits with '
                              '--overwrite (overwrite=True)')
    for folder in held:
        shutil.rmtree(folder)
    return sum(held.values())


def _write_png(path: str, array: np.ndarray) -> None:
    """``cv2.imwrite`` that fails loudly instead of returning False."""
    if not cv2.imwrite(path, array):
        raise OSError(f'could not write {path}')
