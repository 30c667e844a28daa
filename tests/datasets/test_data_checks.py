"""The pre-flight scan of a config's dataset files (gdkd_seg.datasets.checks): bad files are named before anything is
built, by the scan and by the tools that run it."""
import glob
import os
import os.path as osp
import shutil
import sys

import cv2
import pytest
from mmengine.config import Config

from gdkd_seg.datasets.checks import DatasetCheckError, check_dataset_files
from tests.support import cfg_options, config_path, load_tool, tiny_data_options

TOY_CONFIG = config_path('demo', 'gdkd_toy.py')
pytestmark = pytest.mark.usefixtures('mmseg_scope')


@pytest.fixture
def data_copy(toy_data_root, tmp_path) -> str:
    """A private copy of the toy city to break."""
    return shutil.copytree(toy_data_root, str(tmp_path / 'city'))


def data_config(data_root: str) -> Config:
    cfg = Config.fromfile(TOY_CONFIG)
    cfg.merge_from_dict(tiny_data_options(data_root))
    return cfg


def first_pair(data_root: str, split: str = 'train'):
    image = sorted(glob.glob(osp.join(data_root, 'leftImg8bit', split, '*', '*.png')))[0]
    label = image.replace('leftImg8bit', 'gtFine', 1).replace('_leftImg8bit.png', '_gtFine_labelTrainIds.png')
    return image, label


def test_intact_dataset_passes_the_scan(toy_data_root):
    check_dataset_files(data_config(toy_data_root))


def test_empty_split_is_refused(tmp_path):
    for folder in ('leftImg8bit/train/x', 'gtFine/train/x', 'leftImg8bit/val/x', 'gtFine/val/x'):
        os.makedirs(tmp_path / folder)
    with pytest.raises(DatasetCheckError, match=r"train_dataloader: the dataset is empty: no images under "
                                                r"'.*leftImg8bit/train' \(looking for \*_leftImg8bit\.png\)"):
        check_dataset_files(data_config(str(tmp_path)))


def test_corrupt_image_is_named(data_copy):
    image, _ = first_pair(data_copy)
    with open(image, 'wb') as file:
        file.write(b'\x89PNG this is not an image at all' * 10)
    with pytest.raises(DatasetCheckError, match=rf'(?s)1 problem.*{osp.basename(image)}: cannot be read as an image'):
        check_dataset_files(data_config(data_copy))


def test_label_values_outside_the_classes_are_named(data_copy):
    _, label_path = first_pair(data_copy, 'val')
    label = cv2.imread(label_path, cv2.IMREAD_UNCHANGED)
    label[:4, :4] = 40
    cv2.imwrite(label_path, label)
    with pytest.raises(DatasetCheckError, match=rf'(?s)val_dataloader: 1 problem.*0\.\.18 \(19 classes\) or the ignore '
                                                rf'index 255.*{osp.basename(label_path)}: label values \[40\]'):
        check_dataset_files(data_config(data_copy))


def test_image_label_size_mismatch_is_named(data_copy):
    _, label_path = first_pair(data_copy)
    cv2.imwrite(label_path, cv2.imread(label_path, cv2.IMREAD_UNCHANGED)[:32, :64])
    with pytest.raises(DatasetCheckError, match=rf'{osp.basename(label_path)}: label map is 64x32 but its image '
                                                r'.* is 128x64'):
        check_dataset_files(data_config(data_copy))


def truncate_first_image(data_root: str, split: str = 'val') -> str:
    """Cut the body of the first image of ``split`` in half (its header stays readable); returns its path."""
    image, _ = first_pair(data_root, split)
    with open(image, 'rb') as file:
        content = file.read()
    with open(image, 'wb') as file:
        file.write(content[:len(content) // 2])
    return image


def test_truncated_image_passes_the_header_scan_and_fails_the_full_scan(data_copy):
    image = truncate_first_image(data_copy)
    check_dataset_files(data_config(data_copy))  # header only: the size is still readable
    with pytest.raises(DatasetCheckError, match=rf'(?s)val_dataloader: 1 problem.*{osp.basename(image)}: cannot be '
                                                r'read as an image \(OSError: .*truncated'):
        check_dataset_files(data_config(data_copy), mode='full')


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_tools_scan_the_data_before_building_anything(data_copy, tool, monkeypatch):
    _, label_path = first_pair(data_copy, 'val')  # val: the split both tools read
    label = cv2.imread(label_path, cv2.IMREAD_UNCHANGED)
    label[0, 0] = 40
    cv2.imwrite(label_path, label)
    options = cfg_options(tiny_data_options(data_copy))
    argv = [f'{tool}.py', TOY_CONFIG] + (['checkpoint.pth'] if tool == 'test' else []) + options
    module = load_tool(f'{tool}.py')
    monkeypatch.setattr(sys, 'argv', argv)
    with pytest.raises(DatasetCheckError, match=r'label values \[40\]'):
        module.build_config(module.parse_args())
    for skip in (['--skip-data-check'], ['--data-check', 'none']):
        monkeypatch.setattr(sys, 'argv', argv + skip)
        assert module.build_config(module.parse_args()).work_dir


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_tools_decode_every_image_with_data_check_full(data_copy, tool, monkeypatch):
    image = truncate_first_image(data_copy)
    argv = [f'{tool}.py', TOY_CONFIG] + (['checkpoint.pth'] if tool == 'test' else []) + cfg_options(
        tiny_data_options(data_copy))
    module = load_tool(f'{tool}.py')
    monkeypatch.setattr(sys, 'argv', argv)
    assert module.build_config(module.parse_args()).work_dir  # the default scan reads headers
    monkeypatch.setattr(sys, 'argv', argv + ['--data-check', 'full'])
    with pytest.raises(DatasetCheckError, match=osp.basename(image)):
        module.build_config(module.parse_args())
