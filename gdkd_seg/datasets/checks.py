"""Early, readable errors for dataset folders a config points to but that are not there."""
import os.path as osp
from typing import Iterable, List

from mmengine.config import Config

DATA_README = 'data/README.md'


def _datasets(dataset_cfg: dict) -> List[dict]:
    """The leaf dataset configs below dataset wrappers (ConcatDataset, RepeatDataset, ...)."""
    if 'datasets' in dataset_cfg:
        return [leaf for child in dataset_cfg['datasets'] for leaf in _datasets(child)]
    if 'dataset' in dataset_cfg:
        return _datasets(dataset_cfg['dataset'])
    return [dataset_cfg]


def check_data_roots(cfg: Config, splits: Iterable[str] = ('train_dataloader', 'val_dataloader',
                                                            'test_dataloader')) -> None:
    """Raise ``FileNotFoundError`` naming the folder when a dataloader's ``data_root`` or image/label folder is
    missing, and point to ``data/README.md`` for the expected layout.

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
                raise FileNotFoundError(
                    f'{split}: data_root {data_root!r} does not exist. Put the dataset there (layout in '
                    f'{DATA_README}) or pass --cfg-options {split}.dataset.data_root=PATH')
            for kind, folder in (dataset.get('data_prefix') or {}).items():
                path = osp.join(data_root, folder)
                if folder and not osp.isdir(path):
                    raise FileNotFoundError(
                        f'{split}: {kind} folder {path!r} does not exist under data_root {data_root!r}; '
                        f'see {DATA_README} for the expected layout')
