"""Tiny generated datasets in the folder layouts of the benchmarks' real datasets (see data/README.md), so that the
shipped configs' own dataset classes (MMSeg's ADE20K / COCO-Stuff / VOC, mmpretrain's CUB and CustomDataset) read
them unchanged. Images are random; each label map is a few random class blocks.
"""
import os
import os.path as osp
from typing import Dict, Sequence

import cv2
import numpy as np

IMAGE_SIZE = (48, 80)  # (h, w): not square, smaller than the test crops' resize, so the pipelines resize and pad


def _write_pair(rng, image_path: str, label_path: str, labels: Sequence[int]) -> None:
    """A random image and a label map of four vertical stripes drawn from ``labels``."""
    os.makedirs(osp.dirname(image_path), exist_ok=True)
    os.makedirs(osp.dirname(label_path), exist_ok=True)
    h, w = IMAGE_SIZE
    cv2.imwrite(image_path, rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    label = np.zeros((h, w), dtype=np.uint8)
    for stripe, value in enumerate(rng.choice(labels, 4)):
        label[:, stripe * w // 4:(stripe + 1) * w // 4] = value
    cv2.imwrite(label_path, label)


def make_ade20k(root: str, num_train: int = 2, num_val: int = 2, seed: int = 0) -> str:
    """``ADEChallengeData2016`` layout: ``images/{training,validation}/*.jpg``, ``annotations/.../*.png`` with
    labels 0 (other, ignored: reduce_zero_label) .. 150."""
    rng = np.random.default_rng(seed)
    for split, count in (('training', num_train), ('validation', num_val)):
        for index in range(count):
            name = f'ADE_{split[:5]}_{index:08d}'
            _write_pair(rng, osp.join(root, 'images', split, f'{name}.jpg'),
                        osp.join(root, 'annotations', split, f'{name}.png'), range(0, 151))
    return root


def make_coco_stuff164k(root: str, num_train: int = 2, num_val: int = 2, seed: int = 0) -> str:
    """COCO-Stuff-164k after MMSeg's converter: ``images/{train2017,val2017}/*.jpg`` and
    ``annotations/.../*_labelTrainIds.png`` with labels 0..170 and 255 (unlabelled)."""
    rng = np.random.default_rng(seed)
    for split, count in (('train2017', num_train), ('val2017', num_val)):
        for index in range(count):
            name = f'{index:012d}'
            _write_pair(rng, osp.join(root, 'images', split, f'{name}.jpg'),
                        osp.join(root, 'annotations', split, f'{name}_labelTrainIds.png'), [*range(171), 255])
    return root


def make_voc12aug(root: str, num_train: int = 2, num_aug: int = 2, num_val: int = 2, seed: int = 0) -> str:
    """``VOCdevkit/VOC2012`` with SBD's augmented masks: ``JPEGImages/*.jpg``, ``SegmentationClass/*.png`` (train,
    val), ``SegmentationClassAug/*.png`` (aug) and the three lists in ``ImageSets/Segmentation``; labels 0..20, 255."""
    rng = np.random.default_rng(seed)
    lists: Dict[str, list] = {}
    for split, count, masks in (('train', num_train, 'SegmentationClass'), ('aug', num_aug, 'SegmentationClassAug'),
                                ('val', num_val, 'SegmentationClass')):
        names = lists.setdefault(split, [])
        for index in range(count):
            name = f'2007_{split}{index:04d}'
            _write_pair(rng, osp.join(root, 'JPEGImages', f'{name}.jpg'), osp.join(root, masks, f'{name}.png'),
                        [*range(21), 255])
            names.append(name)
    os.makedirs(osp.join(root, 'ImageSets', 'Segmentation'), exist_ok=True)
    for split, names in lists.items():
        with open(osp.join(root, 'ImageSets', 'Segmentation', f'{split}.txt'), 'w') as file:
            file.write('\n'.join(names) + '\n')
    return root


def _write_image(rng, path: str, size: int) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    cv2.imwrite(path, rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def make_tiny_imagenet(root: str, classes: Sequence[str] = ('n01443537', 'n01629819', 'n01641577'),
                       per_class: int = 2, seed: int = 0) -> str:
    """``tiny-imagenet-200`` with its validation images sorted into class folders: ``train/<wnid>/images/*.JPEG``
    (as downloaded) and ``val/<wnid>/*.JPEG``, 64x64."""
    rng = np.random.default_rng(seed)
    for wnid in classes:
        for index in range(per_class):
            _write_image(rng, osp.join(root, 'train', wnid, 'images', f'{wnid}_{index}.JPEG'), 64)
            _write_image(rng, osp.join(root, 'val', wnid, f'val_{wnid}_{index}.JPEG'), 64)
    return root


def make_cub(root: str, num_classes: int = 3, per_class: int = 2, seed: int = 0) -> str:
    """``CUB_200_2011``: ``images/<class folder>/*.jpg``, ``images.txt``, ``image_class_labels.txt`` and
    ``train_test_split.txt`` (1-based ids; each class's first image for training, the rest for testing)."""
    rng = np.random.default_rng(seed)
    images, labels, split = [], [], []
    for cls in range(1, num_classes + 1):
        folder = f'{cls:03d}.Bird_{cls}'
        for index in range(per_class):
            image_id = len(images) + 1
            path = f'{folder}/Bird_{cls}_{index:04d}.jpg'
            _write_image(rng, osp.join(root, 'images', path), 40 + 8 * index)
            images.append(f'{image_id} {path}')
            labels.append(f'{image_id} {cls}')
            split.append(f'{image_id} {int(index == 0)}')
    for name, lines in (('images.txt', images), ('image_class_labels.txt', labels),
                        ('train_test_split.txt', split)):
        with open(osp.join(root, name), 'w') as file:
            file.write('\n'.join(lines) + '\n')
    return root
