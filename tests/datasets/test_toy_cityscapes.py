"""Tests of the procedural toy Cityscapes generator (gdkd_seg.datasets.toy_cityscapes) and its CLI."""
import glob
import json
import os
import subprocess
import sys
from typing import Callable

import cv2
import numpy as np
import pytest
from mmengine.registry import DefaultScope
from mmseg.registry import DATASETS
from mmseg.utils import register_all_modules

from gdkd_seg.datasets import CITYSCAPES_CLASSES, draw_scene, make_toy_cityscapes, scene_generator
from gdkd_seg.datasets.toy_cityscapes import (
    GENERATOR_VERSION,
    STAMP_FILE,
    DatasetExistsError,
    StampError,
    generator_version,
    read_stamp,
    writer,
)
from tests.support import REPO_ROOT, assert_user_error, run_tool_here, tool_path

TOOL = tool_path('dataset_converters/make_toy_cityscapes.py')

SIZE = (64, 128)
NUM_TRAIN, NUM_VAL = 12, 4
VALID_LABELS = set(range(19)) | {255}


def _pngs(root, kind, split):
    return sorted(glob.glob(os.path.join(root, kind, split, '*', '*.png')))


def _read_label(path):
    return cv2.imread(path, cv2.IMREAD_UNCHANGED)


def _label_path_of(image_path):
    """The Cityscapes label file that belongs to an image file."""
    head, city_dir = os.path.split(os.path.dirname(image_path))
    root, split = os.path.split(head)
    stem = os.path.basename(image_path)[:-len('_leftImg8bit.png')]
    return os.path.join(os.path.dirname(root), 'gtFine', split, city_dir, stem + '_gtFine_labelTrainIds.png')


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    """A small generated dataset shared by the tests that only read it."""
    root = str(tmp_path_factory.mktemp('toy_cityscapes'))
    summary = make_toy_cityscapes(root, num_train=NUM_TRAIN, num_val=NUM_VAL, size=SIZE, seed=0, progress=False)
    return root, summary


def test_draw_scene_returns_image_and_train_id_label():
    image, label = draw_scene(np.random.default_rng(7), 48, 96)
    assert image.shape == (48, 96, 3) and image.dtype == np.uint8
    assert label.shape == (48, 96) and label.dtype == np.uint8
    assert set(np.unique(label).tolist()) <= VALID_LABELS
    assert image.std() > 10, 'the image should not be flat'
    # Same generator state, same scene; another state, another scene.
    again_image, again_label = draw_scene(np.random.default_rng(7), 48, 96)
    assert np.array_equal(image, again_image) and np.array_equal(label, again_label)
    other_image, _ = draw_scene(np.random.default_rng(8), 48, 96)
    assert not np.array_equal(image, other_image)


def test_scene_is_a_street_seen_in_perspective():
    """Sky above, road below: averaged over scenes, the top rows are mostly sky/building and the bottom
    rows mostly road, with the road widening towards the camera."""
    labels = np.stack([draw_scene(np.random.default_rng(i), 64, 128)[1] for i in range(12)])
    top, bottom = labels[:, :4], labels[:, -20:-10]
    assert np.isin(top, [2, 8, 10]).mean() > 0.7  # building, vegetation, sky
    assert (bottom == 0).mean() > 0.3
    road_width_far = (labels[:, 34:38] == 0).sum(axis=2).mean()
    road_width_near = (labels[:, 50:54] == 0).sum(axis=2).mean()
    assert road_width_near > 1.5 * road_width_far


def test_every_class_is_common_enough_to_learn():
    """The class balance the demo relies on: in 40 scenes at the demo's 128x256, every one of the 19 classes
    appears in at least 1/8 of the images and covers at least 0.15% of the labelled pixels (thin and rare things:
    poles, lights, signs, riders, two-wheelers, trams), and sky at least 5% (it was a sliver between tall
    buildings). Otherwise a model trained for minutes never predicts the rare classes at all."""
    labels = np.stack([draw_scene(scene_generator(0, 'train', i), 128, 256)[1] for i in range(40)])
    pixels = np.stack([np.bincount(label.ravel(), minlength=256)[:19] for label in labels])
    share = pixels.sum(0) / pixels.sum()
    in_images = (pixels > 0).mean(0)
    assert in_images.min() >= 1 / 8, {name: float(f) for name, f in zip(CITYSCAPES_CLASSES, in_images) if f < 1 / 8}
    assert share.min() >= 0.0015, {name: float(f) for name, f in zip(CITYSCAPES_CLASSES, share) if f < 0.0015}
    assert share[CITYSCAPES_CLASSES.index('sky')] >= 0.05


def test_written_labels_cover_classes_and_void(toy_root):
    root, summary = toy_root
    label_paths = _pngs(root, 'gtFine', 'train') + _pngs(root, 'gtFine', 'val')
    assert len(label_paths) == NUM_TRAIN + NUM_VAL
    histogram = np.zeros(256, np.int64)
    for path in label_paths:
        label = _read_label(path)
        assert label.ndim == 2 and label.dtype == np.uint8 and label.shape == SIZE  # single channel
        histogram += np.bincount(label.ravel(), minlength=256)
    present = set(np.flatnonzero(histogram).tolist())
    assert present <= VALID_LABELS
    assert len(present - {255}) >= 10, f'only train IDs {sorted(present)} appear'
    assert histogram[255] > 0, 'some pixels must be void'
    # The returned summary describes exactly what was written.
    assert summary['num_images'] == {'train': NUM_TRAIN, 'val': NUM_VAL}
    assert summary['ignore_pixels'] == histogram[255]
    assert list(summary['class_pixels'].values()) == histogram[:19].tolist()
    assert len(summary['classes_present']) == len(present - {255})


def test_images_are_rgb_files_paired_with_labels(toy_root):
    root, _ = toy_root
    for split, count in (('train', NUM_TRAIN), ('val', NUM_VAL)):
        image_paths = _pngs(root, 'leftImg8bit', split)
        assert len(image_paths) == count
        for path in image_paths:
            assert path.endswith('_000019_leftImg8bit.png')
            assert os.path.isfile(_label_path_of(path))
    assert {os.path.basename(d) for d in glob.glob(os.path.join(root, 'leftImg8bit', 'train', '*'))} == {
        'toyville', 'gridtown'}
    # Files hold the scene's colours (written BGR, read back BGR): regenerate val image 0 and compare.
    image, label = draw_scene(scene_generator(0, 'val', 0), *SIZE)
    written = cv2.imread(os.path.join(root, 'leftImg8bit', 'val', 'testburg',
                                      'testburg_000000_000019_leftImg8bit.png'))
    assert np.array_equal(written[..., ::-1], image)
    assert np.array_equal(_read_label(os.path.join(root, 'gtFine', 'val', 'testburg',
                                                   'testburg_000000_000019_gtFine_labelTrainIds.png')), label)


def test_colour_alone_does_not_separate_classes(toy_root):
    """The scenes are meant to need context: the best lookup from quantised colour to class, fitted on the
    train images, must stay far from perfect on the val images."""
    root, _ = toy_root

    def pixels(split):
        colours, labels = [], []
        for path in _pngs(root, 'leftImg8bit', split):
            label = _read_label(_label_path_of(path))
            colours.append(cv2.imread(path).reshape(-1, 3) // 32)  # 8 levels per channel
            labels.append(label.ravel())
        colours, labels = np.concatenate(colours).astype(np.int64), np.concatenate(labels)
        keep = labels != 255
        return (colours[keep] * [64, 8, 1]).sum(1), labels[keep]

    train_codes, train_labels = pixels('train')
    val_codes, val_labels = pixels('val')
    votes = np.zeros((512, 19), np.int64)
    np.add.at(votes, (train_codes, train_labels), 1)
    accuracy = (votes.argmax(1)[val_codes] == val_labels).mean()
    majority = np.bincount(val_labels, minlength=19).max() / len(val_labels)
    assert accuracy < 0.65, f'colour alone classifies {accuracy:.0%} of pixels'
    assert accuracy > majority * 0.8  # yet colour is not meaningless either


@pytest.fixture()
def mmseg_scope():
    """MMSeg's registries as the default scope for one test, without leaking a global scope to other tests."""
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def test_mmseg_cityscapes_dataset_reads_the_layout(toy_root, mmseg_scope):
    root, _ = toy_root
    crop = (32, 64)
    train_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='RandomResize', scale=(256, 128), ratio_range=(0.5, 2.0), keep_ratio=True),
        dict(type='RandomCrop', crop_size=crop, cat_max_ratio=0.75),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackSegInputs'),
    ]
    train_set = DATASETS.build(dict(type='CityscapesDataset', data_root=root,
                                    data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
                                    pipeline=train_pipeline))
    assert len(train_set) == NUM_TRAIN
    for info in train_set.data_list:  # every image is paired with its own label file
        assert info['seg_map_path'] == _label_path_of(info['img_path'])
    sample = train_set[0]
    assert tuple(sample['inputs'].shape) == (3, *crop)
    gt = sample['data_samples'].gt_sem_seg.data
    assert tuple(gt.shape) == (1, *crop)
    assert set(gt.unique().tolist()) <= VALID_LABELS

    # Without augmentation the loaded label must equal the file: no zero-label reduction or remapping.
    val_set = DATASETS.build(dict(type='CityscapesDataset', data_root=root,
                                  data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
                                  pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                                            dict(type='PackSegInputs')]))
    assert len(val_set) == NUM_VAL
    sample = val_set[0]
    assert tuple(sample['inputs'].shape) == (3, *SIZE)
    expected = _read_label(sample['data_samples'].seg_map_path)
    assert np.array_equal(sample['data_samples'].gt_sem_seg.data[0].numpy(), expected)


def _file_bytes(root):
    paths = sorted(glob.glob(os.path.join(root, '**', '*.png'), recursive=True))
    return {os.path.relpath(path, root): open(path, 'rb').read() for path in paths}


def test_same_seed_same_bytes_other_seed_other_files(tmp_path):
    kwargs = dict(num_train=3, num_val=2, size=(40, 80), progress=False)
    make_toy_cityscapes(str(tmp_path / 'a'), seed=3, **kwargs)
    make_toy_cityscapes(str(tmp_path / 'b'), seed=3, **kwargs)
    make_toy_cityscapes(str(tmp_path / 'c'), seed=4, **kwargs)
    first, second, other = (_file_bytes(str(tmp_path / name)) for name in 'abc')
    assert len(first) == 2 * (3 + 2)
    assert first == second
    assert first.keys() == other.keys()
    assert all(first[name] != other[name] for name in first if 'leftImg8bit' in name)


def test_images_depend_only_on_seed_split_and_index(tmp_path):
    """A scene does not change with how many others are generated, or with the split sizes."""
    make_toy_cityscapes(str(tmp_path / 'small'), num_train=2, num_val=1, size=(40, 80), seed=5, progress=False)
    make_toy_cityscapes(str(tmp_path / 'large'), num_train=5, num_val=3, size=(40, 80), seed=5, progress=False)

    def by_index(root, split):
        return {os.path.basename(p).split('_')[1]: cv2.imread(p) for p in _pngs(root, 'leftImg8bit', split)}

    for split in ('train', 'val'):
        small, large = by_index(str(tmp_path / 'small'), split), by_index(str(tmp_path / 'large'), split)
        assert small.keys() < large.keys()
        for index, image in small.items():
            assert np.array_equal(image, large[index])
    # Train and val draw different scenes for the same index.
    train_0 = by_index(str(tmp_path / 'large'), 'train')['000000']
    val_0 = by_index(str(tmp_path / 'large'), 'val')['000000']
    assert not np.array_equal(train_0, val_0)


def test_invalid_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError):
        make_toy_cityscapes(str(tmp_path), num_train=-1, progress=False)
    with pytest.raises(ValueError):
        make_toy_cityscapes(str(tmp_path), seed=-2, progress=False)
    with pytest.raises(ValueError):
        draw_scene(np.random.default_rng(0), 4, 4)


@pytest.fixture
def run_cli(monkeypatch) -> Callable[..., subprocess.CompletedProcess]:
    """``run_cli(out, *extra)``: the generator's command line on a small city, run in this process."""
    def run(out: str, *extra: str) -> subprocess.CompletedProcess:
        return run_tool_here('dataset_converters/make_toy_cityscapes.py', '--out', out, '--num-train', '2',
                             '--num-val', '1', '--size', '32', '64', '--quiet', *extra, monkeypatch=monkeypatch)
    return run


def test_command_line_writes_the_dataset(tmp_path):
    out = tmp_path / 'cli_toy'
    preview = tmp_path / 'preview.png'
    result = subprocess.run(
        [sys.executable, TOOL, '--out', str(out), '--num-train', '3', '--num-val', '2', '--size', '48', '96', '--seed',
         '1', '--quiet', '--preview', str(preview)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'wrote 3 train + 2 val images of 48x96' in result.stdout
    for kind in ('leftImg8bit', 'gtFine'):
        assert len(_pngs(str(out), kind, 'train')) == 3
        assert len(_pngs(str(out), kind, 'val')) == 2
    assert cv2.imread(_pngs(str(out), 'leftImg8bit', 'val')[0]).shape == (48, 96, 3)
    assert cv2.imread(str(preview)).shape == (6 * 48, 2 * 96, 3)
    # The CLI and the function agree byte for byte.
    make_toy_cityscapes(str(tmp_path / 'api_toy'), num_train=3, num_val=2, size=(48, 96), seed=1, progress=False)
    assert _file_bytes(str(out)) == _file_bytes(str(tmp_path / 'api_toy'))


def test_command_line_refuses_a_folder_with_images_unless_overwrite(tmp_path, run_cli):
    """The dataset reads every image under a split: old files left beside new ones would silently join it."""
    out = str(tmp_path / 'toy')
    make_toy_cityscapes(out, num_train=3, num_val=2, size=(32, 64), seed=0, progress=False)
    before = _file_bytes(out)
    assert_user_error(run_cli(out), 'already holds a dataset', 'leftImg8bit/train (3 files)', '--overwrite')
    assert _file_bytes(out) == before  # nothing written, nothing removed
    replaced = run_cli(out, '--overwrite')
    assert replaced.returncode == 0, replaced.stderr
    assert 'replaced the existing train and val splits (10 files removed)' in replaced.stdout
    for kind in ('leftImg8bit', 'gtFine'):
        assert len(_pngs(out, kind, 'train')) == 2 and len(_pngs(out, kind, 'val')) == 1


def test_stamp_records_the_generator_version_and_every_file_written(tmp_path):
    """The demo refuses a toy city of another generator version; the stamp says which one made it, and which files
    are the generator's (the only ones --overwrite deletes)."""
    out = str(tmp_path / 'toy')
    assert generator_version(out) is None
    make_toy_cityscapes(out, num_train=2, num_val=1, size=(32, 64), seed=3, progress=False)
    assert generator_version(out) == GENERATOR_VERSION
    written = sorted(os.path.relpath(path, out) for path in glob.glob(os.path.join(out, '*', '*', '*', '*.png')))
    with open(os.path.join(out, STAMP_FILE)) as file:
        stamp = json.load(file)
    assert sorted(stamp.pop('files')) == written and len(written) == 6
    assert stamp == dict(generator_version=GENERATOR_VERSION, size=[32, 64], seed=3, num_images=dict(train=2, val=1),
                         complete=True)
    os.remove(os.path.join(out, STAMP_FILE))  # as a generator that wrote no stamp leaves it
    assert generator_version(out) is None


def test_interrupted_generation_is_incomplete_and_overwrite_removes_what_it_wrote(tmp_path, monkeypatch):
    out = str(tmp_path / 'toy')
    drawn = []

    def draw_twice(*args):
        if len(drawn) == 2:
            raise KeyboardInterrupt
        drawn.append(args)
        return draw_scene(*args)

    monkeypatch.setattr(writer, 'draw_scene', draw_twice)
    with pytest.raises(KeyboardInterrupt):
        make_toy_cityscapes(out, num_train=3, num_val=2, size=(32, 64), progress=False)
    assert generator_version(out) is None  # the demo refuses a half-written city
    assert read_stamp(out)['complete'] is False and len(read_stamp(out)['files']) == 10
    monkeypatch.undo()
    summary = make_toy_cityscapes(out, num_train=1, num_val=1, size=(32, 64), progress=False, overwrite=True)
    assert summary['removed_files'] == 4
    assert len(_file_bytes(out)) == 4 and generator_version(out) == GENERATOR_VERSION


def _all_files(root: str) -> dict:
    """Every file under ``root`` (relative path -> bytes)."""
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), 'rb') as file:
                found[os.path.relpath(os.path.join(folder, name), root)] = file.read()
    return found


def test_overwrite_removes_only_the_files_the_generator_wrote(tmp_path, run_cli):
    out = str(tmp_path / 'toy')
    make_toy_cityscapes(out, num_train=3, num_val=2, size=(32, 64), seed=0, progress=False,
                        cities=dict(train=('toyville', 'gridtown', 'oldtown'), val=('testburg', )))
    user_files = {os.path.join(tmp_path, 'beside.txt'): b'beside', os.path.join(out, 'notes.txt'): b'inside',
                  os.path.join(out, 'leftImg8bit', 'README.md'): b'about', os.path.join(out, 'gtFine', 'test',
                                                                                       'mine.png'): b'test split'}
    for path, content in user_files.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as file:
            file.write(content)
    replaced = run_cli(out, '--overwrite')
    assert replaced.returncode == 0, replaced.stderr
    assert 'replaced the existing train and val splits (10 files removed)' in replaced.stdout
    for path, content in user_files.items():
        with open(path, 'rb') as file:
            assert file.read() == content
    assert not os.path.exists(os.path.join(out, 'leftImg8bit', 'train', 'oldtown'))  # emptied, so removed
    assert len(_pngs(out, 'leftImg8bit', 'train')) == 2 and len(_pngs(out, 'gtFine', 'val')) == 1

    # a file of the user's inside a split would be read as part of the dataset: refused, nothing removed
    stray = os.path.join(out, 'leftImg8bit', 'train', 'toyville', 'my_photo_leftImg8bit.png')
    with open(stray, 'wb') as file:
        file.write(b'my photo')
    before = _all_files(str(tmp_path))
    message = assert_user_error(run_cli(out, '--overwrite'), out, 'not listed in its toy_city.json',
                                'leftImg8bit/train/toyville/my_photo_leftImg8bit.png', 'move them out')
    assert 'Traceback' not in message
    assert _all_files(str(tmp_path)) == before


def test_overwrite_refuses_a_folder_that_is_not_a_toy_city(tmp_path, run_cli):
    out = str(tmp_path / 'cityscapes')
    for path in ('leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png',
                 'gtFine/train/aachen/aachen_000000_000019_gtFine_labelTrainIds.png', 'README'):
        os.makedirs(os.path.dirname(os.path.join(out, path)), exist_ok=True)
        with open(os.path.join(out, path), 'wb') as file:
            file.write(path.encode())
    before = _all_files(out)
    assert_user_error(run_cli(out, '--overwrite'), out, '2 file(s)', 'it has no toy_city.json: it is not a toy city',
                      'aachen_000000_000019_leftImg8bit.png', 'choose another output folder')
    assert _all_files(out) == before
    with pytest.raises(DatasetExistsError, match='it is not a toy city'):  # the same refusal without --overwrite
        make_toy_cityscapes(out, num_train=1, num_val=1, size=(32, 64), progress=False)
    assert _all_files(out) == before


def test_generator_writes_into_a_folder_whose_name_is_not_utf8(tmp_path, run_cli):
    """Linux file names are bytes; one that is not UTF-8 reaches Python as a lone surrogate."""
    out = os.path.join(str(tmp_path), os.fsdecode(b'toy_\xff'))
    preview = os.path.join(out, os.fsdecode(b'preview_\xff.png'))
    result = run_cli(out, '--preview', preview)
    assert result.returncode == 0, result.stderr
    assert f"to {os.path.join(str(tmp_path), 'toy_')}\\xff in" in result.stdout
    assert len(_pngs(out, 'leftImg8bit', 'train')) == 2 and os.path.isfile(preview)
    assert generator_version(out) == GENERATOR_VERSION


def _stamp_text(out: str) -> str:
    with open(os.path.join(out, STAMP_FILE)) as file:
        return file.read()


def _edit_stamp(**changes):
    """A damage that changes keys of the stamp (None: removes the key)."""
    def damage(text: str) -> str:
        stamp = json.loads(text)
        stamp.update(changes)
        return json.dumps({key: value for key, value in stamp.items() if value is not None})
    return damage


STAMP_DAMAGE = {
    'truncated': (lambda text: text[:len(text) // 2], 'not valid JSON'),
    'empty': (lambda text: '', 'not valid JSON'),
    'not JSON': (lambda text: 'generator_version: 2\n', 'not valid JSON'),
    'not an object': (lambda text: '[2]', 'holds a JSON list, not an object'),
    'version as a string': (_edit_stamp(generator_version='2'), "'generator_version' is \"2\", expected an integer"),
    'files not a list': (_edit_stamp(files='all'), "'files' is \"all\", expected a list"),
    'file outside the dataset': (_edit_stamp(files=['../../home/notes.txt']), "'files' is"),
    'missing keys': (_edit_stamp(files=None, complete=None), 'the key(s) files, complete are missing'),
}


@pytest.mark.parametrize('damage', STAMP_DAMAGE)
def test_damaged_stamp_is_named_with_the_command_that_regenerates_the_city(tmp_path, damage):
    out = str(tmp_path / 'toy')
    make_toy_cityscapes(out, num_train=1, num_val=1, size=(32, 64), progress=False)
    damaged, problem = STAMP_DAMAGE[damage]
    text = _stamp_text(out)
    with open(os.path.join(out, STAMP_FILE), 'w') as file:
        file.write(damaged(text))
    before = _all_files(out)
    for read in (generator_version, read_stamp,
                 lambda root: make_toy_cityscapes(root, num_train=1, num_val=1, size=(32, 64), progress=False,
                                                  overwrite=True)):
        with pytest.raises(StampError) as raised:
            read(out)
        message = str(raised.value)
        assert message.startswith(f'{os.path.join(out, STAMP_FILE)} is damaged or out of date: ')
        assert problem in message
        assert f'python tools/dataset_converters/make_toy_cityscapes.py --out {out}' in message
    assert _all_files(out) == before  # --overwrite cannot tell the generator's files: it removes nothing


def test_tools_refuse_a_damaged_stamp_as_a_user_error(tmp_path, run_cli, monkeypatch):
    out = str(tmp_path / 'toy')
    make_toy_cityscapes(out, num_train=1, num_val=1, size=(32, 64), progress=False)
    with open(os.path.join(out, STAMP_FILE), 'w') as file:
        file.write('{"generator_version": 2, "si')
    assert_user_error(run_cli(out, '--overwrite'), f'{out}/{STAMP_FILE} is damaged', 'not valid JSON',
                      f'make_toy_cityscapes.py --out {out}')
    demo = run_tool_here('reproduce/demo.py', '--work-dir', str(tmp_path / 'demo'), '--data-root', out,
                         monkeypatch=monkeypatch)
    assert_user_error(demo, f'{out}/{STAMP_FILE} is damaged', f'make_toy_cityscapes.py --out {out}')
    assert not os.path.exists(tmp_path / 'demo')
