"""The pre-flight scan of a config's dataset files (gdkd_seg.datasets.checks): bad files are named before anything is
built, by the scan and by the tools that run it."""
import glob
import os
import os.path as osp
import shutil
import sys

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

from gdkd_seg.datasets import CITYSCAPES_PALETTE
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


def rename_with_byte_ff(path: str, suffix: str) -> str:
    """Rename ``path`` (ending in ``suffix``) to hold the byte 0xff, which is not UTF-8, before the suffix (as a
    Linux file name may); returns the new path, as Python spells it (with a lone surrogate)."""
    renamed = path[:-len(suffix)] + os.fsdecode(b'_\xff') + suffix
    os.rename(path, renamed)
    return renamed


def read_png(path: str):
    with open(path, 'rb') as file:
        return cv2.imdecode(np.frombuffer(file.read(), np.uint8), cv2.IMREAD_UNCHANGED)


def write_png(path: str, array) -> None:
    with open(path, 'wb') as file:
        file.write(cv2.imencode('.png', array)[1].tobytes())


def test_file_names_that_are_not_utf8_are_read_and_named(data_copy):
    image, label_path = first_pair(data_copy)
    rename_with_byte_ff(image, '_leftImg8bit.png')
    label_path = rename_with_byte_ff(label_path, '_gtFine_labelTrainIds.png')
    check_dataset_files(data_config(data_copy), mode='full')
    label = read_png(label_path)
    label[:4, :4] = 40
    write_png(label_path, label)
    with pytest.raises(DatasetCheckError) as raised:
        check_dataset_files(data_config(data_copy))
    shown = osp.basename(label_path).replace('\udcff', '\\xff')  # the byte, printable whatever the terminal
    assert f'{shown}: label values [40]' in str(raised.value)
    assert '\udcff' not in str(raised.value)  # the message prints and logs whatever the terminal's encoding


def palette_label(label: np.ndarray) -> Image.Image:
    """``label`` as a palette PNG whose indices are the values, with the Cityscapes colours (as Pascal VOC's
    SegmentationClass stores its labels)."""
    image = Image.fromarray(label, mode='P')
    image.putpalette([channel for colour in CITYSCAPES_PALETTE for channel in colour])
    return image


def test_palette_label_maps_are_decoded_as_the_pipeline_decodes_them(data_copy):
    """MMSeg's LoadAnnotations decodes with pillow by default, which gives a palette PNG's indices; with
    ``imdecode_backend='cv2'`` it gets the palette's colours, which the check refuses as training would misread
    them."""
    _, label_path = first_pair(data_copy, 'val')
    palette_label(read_png(label_path)).save(label_path)
    with Image.open(label_path) as saved:
        assert saved.mode == 'P'
    cfg = data_config(data_copy)
    check_dataset_files(cfg)
    for transform in cfg.val_dataloader.dataset.pipeline:
        if transform['type'] == 'LoadAnnotations':
            transform['imdecode_backend'] = 'cv2'
    with pytest.raises(DatasetCheckError, match=rf'{osp.basename(label_path)}: label map has 3 channels'):
        check_dataset_files(cfg, splits=('val_dataloader', ))


def test_palette_index_that_is_no_class_is_named(data_copy):
    _, label_path = first_pair(data_copy, 'val')
    label = read_png(label_path)
    label[:4, :4] = 53
    palette_label(label).save(label_path)
    with pytest.raises(DatasetCheckError, match=rf'{osp.basename(label_path)}: label values \[53\]') as raised:
        check_dataset_files(data_config(data_copy))
    assert 'channels' not in str(raised.value)


def test_colour_label_map_is_refused_naming_its_channels(data_copy):
    _, label_path = first_pair(data_copy, 'val')
    colours = np.array(list(CITYSCAPES_PALETTE) + [(0, 0, 0)] * (256 - len(CITYSCAPES_PALETTE)), np.uint8)
    Image.fromarray(colours[read_png(label_path)], mode='RGB').save(label_path)
    with pytest.raises(DatasetCheckError, match=rf'{osp.basename(label_path)}: label map has 3 channels; expected a '
                                                r'single-channel map of class indices \(a grey-scale or palette PNG\)'):
        check_dataset_files(data_config(data_copy))
