"""Early, readable errors for dataset folders a config points to but that are not there, and for dataset files
that training would choke on (:func:`check_dataset_files`)."""
import os
import os.path as osp
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, List, Optional, Tuple

import mmcv
import numpy as np
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import DefaultScope
from mmseg.registry import DATASETS
from PIL import Image

from ..engine.distributed import is_main_process_by_env
from ..utils.errors import UserError
from ..utils.files import printable_path

DATA_README = 'data/README.md'


def _datasets(dataset_cfg: dict) -> List[dict]:
    """The leaf dataset configs below dataset wrappers (ConcatDataset, RepeatDataset, ...)."""
    if 'datasets' in dataset_cfg:
        return [leaf for child in dataset_cfg['datasets'] for leaf in _datasets(child)]
    if 'dataset' in dataset_cfg:
        return _datasets(dataset_cfg['dataset'])
    return [dataset_cfg]


class MissingDataError(UserError, FileNotFoundError):
    """A dataset folder a config points to that does not exist."""


def check_data_roots(cfg: Config, splits: Iterable[str] = ('train_dataloader', 'val_dataloader',
                                                            'test_dataloader')) -> None:
    """Raise :class:`MissingDataError` (a ``FileNotFoundError``) naming the folder when a dataloader's ``data_root``
    or image/label folder is missing, and point to ``data/README.md`` for the expected layout.

    Only segmentation configs (``default_scope='mmseg'``) are checked: mmpretrain datasets take other layouts
    and some (CIFAR) download themselves.

    Args:
        cfg: the full config.
        splits: the dataloader keys to check (those that are absent or None are skipped).
    """
    if cfg.get('default_scope') != 'mmseg':
        return
    for split in splits:
        loader = cfg.get(split)
        if not loader:
            continue
        for dataset in _datasets(loader['dataset']):
            data_root = dataset.get('data_root') or ''
            if data_root and not osp.isdir(data_root):
                raise MissingDataError(
                    f'{split}: data_root {data_root!r} does not exist. Put the dataset there (layout in '
                    f'{DATA_README}) or pass --cfg-options {split}.dataset.data_root=PATH')
            for kind, folder in (dataset.get('data_prefix') or {}).items():
                path = osp.join(data_root, folder)
                if folder and not osp.isdir(path):
                    raise MissingDataError(
                        f'{split}: {kind} folder {path!r} does not exist under data_root {data_root!r}; '
                        f'see {DATA_README} for the expected layout')


class DatasetCheckError(UserError, ValueError):
    """A dataset split that training would choke on: empty, unreadable files, bad label values, size mismatches."""


MAX_PROBLEMS_SHOWN = 10


def _label_decode_backend(dataset_cfg: dict) -> str:
    """The ``imdecode_backend`` the dataset's ``LoadAnnotations`` decodes label maps with (MMSeg's default,
    ``'pillow'``, when the pipeline sets none)."""
    for transform in dataset_cfg.get('pipeline') or []:
        kind = transform.get('type') if isinstance(transform, dict) else None
        if getattr(kind, '__name__', str(kind)).split('.')[-1] == 'LoadAnnotations':
            return transform.get('imdecode_backend', 'pillow')
    return 'pillow'


def _check_pair(img_path: str, seg_map_path: Optional[str], valid_labels: np.ndarray, decode_images: bool = False,
                label_backend: str = 'pillow') -> List[str]:
    """The problems of one image / label-map pair (empty when fine).

    The image is opened for its header only (format and size; no pixel decoding, so a 2048x1024 Cityscapes image
    costs well under a millisecond), or with ``decode_images`` decoded in full, which also finds a truncated or
    corrupt body. The label map is always decoded in full to read its values, as MMSeg's ``LoadAnnotations`` decodes
    it: the file's bytes through ``mmcv.imfrombytes(flag='unchanged', backend=label_backend)``, then squeezed, so a
    palette PNG yields its indices. Files are read by Python, never by OpenCV from a path: OpenCV crashes the process
    on a file name that is not UTF-8.

    Args:
        img_path: the image file.
        seg_map_path: its label map, or None for a dataset without labels.
        valid_labels: boolean lookup ``label value -> allowed`` (see :func:`_valid_labels`).
        decode_images: decode the image in full instead of reading its header.
        label_backend: the ``imdecode_backend`` of the dataset's ``LoadAnnotations``.

    Returns:
        One message per problem, each starting with the file it is about.
    """
    shown_img, shown_seg = printable_path(img_path), printable_path(seg_map_path or '')
    try:
        with Image.open(img_path) as image:  # Pillow opens the file with Python's open
            width, height = image.size
            if decode_images:
                image.load()
    except Exception as err:  # PIL raises UnidentifiedImageError, OSError, SyntaxError, ... for bad files
        return [f'{shown_img}: cannot be read as an image ({type(err).__name__}: {err})']
    if seg_map_path is None:
        return []
    if not osp.isfile(seg_map_path):
        return [f'{shown_seg}: missing (the label map of {osp.basename(shown_img)})']
    try:
        with open(seg_map_path, 'rb') as file:
            decoded = mmcv.imfrombytes(file.read(), flag='unchanged', backend=label_backend)
    except Exception as err:  # the decoders raise many types for bad files (cv2 returns None instead)
        decoded, reason = None, f' ({type(err).__name__}: {err})'
    else:
        reason = ''
    if decoded is None:
        return [f'{shown_seg}: cannot be read as an image{reason} (label map of {osp.basename(shown_img)})']
    problems = []
    label = decoded.squeeze()
    if label.ndim == 3:
        problems.append(f'{shown_seg}: label map has {label.shape[2]} channels; expected a single-channel map of '
                        'class indices (a grey-scale or palette PNG)')
        label = label[..., 0]
    if decoded.shape[:2] != (height, width):
        problems.append(f'{shown_seg}: label map is {decoded.shape[1]}x{decoded.shape[0]} but its image '
                        f'{osp.basename(shown_img)} is {width}x{height} (width x height)')
    present = np.flatnonzero(np.bincount(label.ravel(), minlength=valid_labels.size)) if label.dtype == np.uint8 \
        else np.unique(label)
    invalid = [int(value) for value in present
               if value < 0 or value >= valid_labels.size or not valid_labels[int(value)]]
    if invalid:
        problems.append(f'{shown_seg}: label values {invalid} are neither a class index nor the ignore index')
    return problems


def _valid_labels(dataset) -> Tuple[np.ndarray, str]:
    """A boolean lookup ``raw label value -> allowed`` for the dataset, and its description for messages."""
    num_classes = len(dataset.metainfo['classes'])
    ignore_index = dataset.ignore_index
    label_map = getattr(dataset, 'label_map', None)
    if label_map:
        allowed, described = set(label_map), f'one of the {len(label_map)} label_map keys'
    elif dataset.reduce_zero_label:
        allowed, described = set(range(num_classes + 1)), f'0..{num_classes} (reduce_zero_label)'
    else:
        allowed, described = set(range(num_classes)), f'0..{num_classes - 1}'
    allowed.add(ignore_index)
    lookup = np.zeros(max(allowed) + 1, bool)
    lookup[list(allowed)] = True
    return lookup, f'{described} ({num_classes} classes) or the ignore index {ignore_index}'


DATA_CHECK_MODES = ('header', 'full', 'none')
WHAT_IS_CHECKED = {
    'header': 'image headers (format, size) and decoded label maps (values, size); image pixels not decoded, '
              '--data-check full decodes them',
    'full': 'images and label maps decoded in full',
}


def check_dataset_files(cfg: Config, splits: Iterable[str] = ('train_dataloader', 'val_dataloader'),
                        num_threads: int = min(8, os.cpu_count() or 1), mode: str = 'header') -> None:
    """Pre-flight scan of the files a segmentation config will read, so bad data fails before the first step.

    For every split, MMSeg's own dataset class lists the image / label pairs (suffixes, ``ann_file`` and all), then
    each pair is checked: the split is not empty (an empty split makes MMEngine's ``InfiniteSampler`` spin forever);
    every image opens as an image (``mode='header'``: its header only; ``mode='full'``: decoded in full, which also
    finds a truncated or corrupt body that would otherwise fail later inside a dataloader worker); every label map
    decodes as the pipeline's ``LoadAnnotations`` decodes it (palette PNGs give their indices), has a single channel
    and the image's size, and holds only class indices and the ignore index (a stray value such as 40 would crash
    the cross-entropy mid-run on CPU and trigger an opaque device-side assert on GPU).
    Up to 8 threads share the work: the toy city's 250 pairs take about 0.1 s; a 2048x1024 pair costs about 10 ms of
    CPU (decoding the label map), so Cityscapes' 3475 train + 500 val pairs take about 40 CPU-seconds, a few seconds
    of wall time on 8 cores. ``mode='full'`` adds the decoding of every image: the toy city's 250 pairs take 0.3 s
    instead of 0.1 s, and a 2048x1024 PNG takes about 0.17 s of CPU to decode (measured on a 2-core CPU machine
    while tests ran), so Cityscapes takes about 11 CPU-minutes more, a minute and a half on 8 cores.

    Only segmentation configs (``default_scope='mmseg'``) on local files are scanned, and on a distributed run only
    rank 0 scans (the others fail with it). ``tools/train.py`` and ``tools/test.py`` call this with their
    ``--data-check`` mode (``none`` skips it).

    Args:
        cfg: the full config.
        splits: the dataloader keys to scan.
        num_threads: threads that share the work.
        mode: ``'header'`` or ``'full'`` (see above).

    Raises:
        DatasetCheckError: naming the split, the folder or the files (the first ten), and what is wrong.
    """
    if mode not in WHAT_IS_CHECKED:
        raise ValueError(f"mode must be one of {', '.join(WHAT_IS_CHECKED)}, got {mode!r}")
    if cfg.get('default_scope') != 'mmseg' or not is_main_process_by_env():
        return
    checked = set()
    for split in splits:
        loader = cfg.get(split)
        if not loader:
            continue
        for dataset_cfg in _datasets(loader['dataset']):
            if '://' in str(dataset_cfg.get('data_root') or ''):
                continue
            started = time.perf_counter()
            with DefaultScope.overwrite_default_scope('mmseg'):
                dataset = DATASETS.build(dict(dataset_cfg, pipeline=[], lazy_init=True))
            pairs = [(item['img_path'], item.get('seg_map_path')) for item in dataset.load_data_list()]
            if not pairs:
                img_dir = dataset.data_prefix.get('img_path', dataset.data_root)
                source = f'listed in {printable_path(dataset.ann_file)!r}' if dataset.ann_file else \
                    f'under {printable_path(img_dir)!r} (looking for *{dataset.img_suffix})'
                raise DatasetCheckError(f'{split}: the dataset is empty: no images {source}. Put the images there '
                                        f'(layout in {DATA_README}) or point {split}.dataset.data_root elsewhere')
            valid, described = _valid_labels(dataset)
            backend = _label_decode_backend(dataset_cfg)
            todo = [pair for pair in pairs if pair not in checked]
            with ThreadPoolExecutor(max_workers=num_threads) as pool:
                problems = [problem for found in pool.map(
                    lambda pair: _check_pair(*pair, valid, mode == 'full', backend), todo) for problem in found]
            checked.update(todo)
            if problems:
                more = f'\n  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more' \
                    if len(problems) > MAX_PROBLEMS_SHOWN else ''
                raise DatasetCheckError(
                    f'{split}: {len(problems)} problem(s) in the dataset files (labels must be {described}):\n  '
                    + '\n  '.join(problems[:MAX_PROBLEMS_SHOWN]) + more
                    + '\nFix or remove these files (skip this check with --data-check none).')
            print_log(f'{split}: checked {len(todo)} image/label pairs in {time.perf_counter() - started:.1f} s: '
                      f'{WHAT_IS_CHECKED[mode]}', logger='current')
