"""ClsDistiller on the real mmpretrain/MMEngine stack: a training epoch, the shipped configs, labels, predictions."""
import copy
import os
import os.path as osp
from types import SimpleNamespace
from typing import Callable

import cv2
import mmpretrain
import numpy as np
import pytest
import torch
import yaml
from mmengine.config import Config
from mmengine.runner import Runner
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from mmseg.registry import MODELS as SEG_MODELS

from gdkd_seg.checkpoint.loading import load_checkpoint_file
from gdkd_seg.engine.hooks import DistillWarmupHook
from gdkd_seg.models import teacher_model_config
from gdkd_seg.models.loss_set import distill_loss_dict
from tests.support import assert_student_trained_teacher_frozen, config_path

# more classes than the shipped GDKD's k=5, so its 'other' group is not empty
CLASSES = ('cat', 'dog', 'fox', 'owl', 'elk', 'yak')
IMAGES_PER_CLASS = 3
CIFAR_CONFIG = config_path('cls', 'resnet50_to_resnet18_cifar100_gdkd.py')
SHIPPED = {
    'resnet34_to_resnet18_imagenet_gdkd.py': dict(loss='loss_gdkd', type='GDKDLoss', warmup_epochs=1, lr=0.2,
                                                 options=dict(k=5, w0=0.5, w1=1.0, w2=1.0, temperature=1.0)),
    'resnet34_to_resnet18_imagenet_dkd.py': dict(loss='loss_dkd', type='DKDLoss', warmup_epochs=1, lr=0.2,
                                                options=dict(alpha=0.5, beta=0.5, temperature=1.0)),
    'resnet50_to_resnet18_cifar100_gdkd.py': dict(loss='loss_gdkd', type='GDKDLoss', warmup_epochs=20, lr=0.05,
                                                  options=dict(k=5, w0=1.0, w1=1.0, w2=8.0, temperature=4.0)),
}


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    """Any checkpoint download (a zoo URL left in a config) fails the test instead of reaching the network."""
    def refuse(url, *args, **kwargs):
        raise AssertionError(f'test tried to download {url}')
    monkeypatch.setattr('mmengine.runner.checkpoint.load_url', refuse)


def tiny_classifier(width: int, num_classes: int = len(CLASSES)) -> dict:
    """mmpretrain's CIFAR ResNet-18 with ``width`` stem/base channels."""
    return dict(type='ImageClassifier',
                backbone=dict(type='ResNet_CIFAR', depth=18, num_stages=4, out_indices=(3, ), style='pytorch',
                              stem_channels=width, base_channels=width),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=width * 8,
                          loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))


def write_classifier_checkpoint(model_cfg: dict, path: str, seed: int = 0) -> str:
    """Build an mmpretrain classifier with random weights and save an MMEngine-style checkpoint."""
    torch.manual_seed(seed)
    model_cfg = dict(model_cfg)
    model_cfg.pop('pretrained', None)
    torch.save({'state_dict': MODELS.build(model_cfg).state_dict(), 'meta': {'note': 'test teacher'}}, path)
    return path


@pytest.fixture(scope='session')
def image_folder(tmp_path_factory) -> str:
    """``train/<class>/*.png``: 3 random 32x32 images for each of 6 classes."""
    root = str(tmp_path_factory.mktemp('image_folder'))
    rng = np.random.default_rng(0)
    for index, name in enumerate(CLASSES):
        os.makedirs(osp.join(root, 'train', name))
        for image in range(IMAGES_PER_CLASS):
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) // 2 + 20 * index
            cv2.imwrite(osp.join(root, 'train', name, f'{image}.png'), pixels)
    return root


@pytest.fixture(scope='session')
def tiny_teacher_ckpt(tmp_path_factory) -> str:
    return write_classifier_checkpoint(tiny_classifier(8), str(tmp_path_factory.mktemp('teacher') / 'teacher.pth'))


@pytest.fixture(scope='session')
def cifar_config() -> Config:
    """The shipped CIFAR-100 config, loaded once (copy it before changing it)."""
    return Config.fromfile(CIFAR_CONFIG)


def tiny_cifar_config(cifar_config: Config, image_folder: str, teacher_ckpt: str, work_dir: str) -> Config:
    """The shipped CIFAR-100 config with tiny models, the generated image folder and a one-iteration epoch."""
    cfg = copy.deepcopy(cifar_config)
    cfg.model.student = tiny_classifier(4)
    cfg.model.teacher = tiny_classifier(8)
    cfg.model.teacher_ckpt = teacher_ckpt
    cfg.data_preprocessor.num_classes = len(CLASSES)
    num_images = len(CLASSES) * IMAGES_PER_CLASS
    for split, pipeline in (('train_dataloader', cfg.train_dataloader.dataset.pipeline),
                            ('val_dataloader', cfg.val_dataloader.dataset.pipeline)):
        cfg[split].dataset = dict(type='CustomDataset', data_root=image_folder, data_prefix=dict(img_path='train'),
                                  pipeline=[dict(type='LoadImageFromFile')] + list(pipeline))
        cfg[split].update(batch_size=num_images, num_workers=0, persistent_workers=False)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.merge_from_dict({
        'work_dir': work_dir, 'train_cfg.max_epochs': 1, 'default_hooks.checkpoint.interval': 1,
        'default_hooks.logger.interval': 1, 'custom_hooks': [dict(type='DistillWarmupHook', warmup_iters=2)]})
    return cfg


def build_distiller(model_cfg: dict, data_preprocessor: dict = None):
    """Build as MMEngine's Runner does: the config's top-level data_preprocessor goes into the model."""
    model_cfg = copy.deepcopy(model_cfg)
    if data_preprocessor is not None:
        model_cfg.setdefault('data_preprocessor', data_preprocessor)
    return MODELS.build(model_cfg)


def tiny_model_cfg(cifar_config, image_folder, teacher_ckpt, tmp_path) -> dict:
    cfg = tiny_cifar_config(cifar_config, image_folder, teacher_ckpt, str(tmp_path))
    cfg.model.data_preprocessor = cfg.data_preprocessor
    return cfg.model


def test_one_training_iteration_updates_student_only(cifar_config, image_folder, tiny_teacher_ckpt, tmp_path):
    runner = Runner.from_cfg(tiny_cifar_config(cifar_config, image_folder, tiny_teacher_ckpt, str(tmp_path)))
    distiller = runner.model
    student_before = copy.deepcopy(distiller.student.state_dict())
    teacher_before = copy.deepcopy(distiller.teacher.state_dict())
    runner.train()  # one epoch of one batch, then validation through the student (mmpretrain's Accuracy)

    assert runner.iter == 1
    history = runner.message_hub.log_scalars
    for key in ('train/loss', 'train/cls.loss', 'train/distill.loss_gdkd', 'train/distill.gdkd_kl_mass',
                'train/distill.gdkd_kl_top', 'train/distill.gdkd_kl_other', 'val/accuracy/top1'):
        assert key in history, f'{key} not logged; got {sorted(history)}'
        assert np.isfinite(history[key].current()), key
    # the logged total is the optimised sum, not the student's CE alone
    assert history['train/loss'].current() == pytest.approx(
        history['train/cls.loss'].current() + history['train/distill.loss_gdkd'].current(), rel=1e-5)
    assert history['train/distill_factor'].current() == pytest.approx(0.5)
    assert history['train/distill.loss_gdkd'].current() > 0

    assert_student_trained_teacher_frozen(distiller, student_before, teacher_before, 'head')

    keys = load_checkpoint_file(osp.join(str(tmp_path), 'epoch_1.pth'))['state_dict'].keys()
    assert keys and all(key.startswith('student.') for key in keys)



def test_epoch_warmup_is_the_authors_factor_per_epoch(cifar_config, image_folder, tiny_teacher_ckpt, tmp_path):
    """warmup_epochs=4: 1/4 during the first epoch, 2/4 during the second (mdistiller's min(epoch / WARMUP, 1))."""
    cfg = tiny_cifar_config(cifar_config, image_folder, tiny_teacher_ckpt, str(tmp_path))
    half = len(CLASSES) * IMAGES_PER_CLASS // 2  # two iterations per epoch
    cfg.merge_from_dict({'train_cfg.max_epochs': 2, 'train_cfg.val_interval': 2, 'train_dataloader.batch_size': half,
                         'custom_hooks': [dict(type='DistillWarmupHook', warmup_epochs=4)]})
    runner = Runner.from_cfg(cfg)
    runner.train()
    factors, _ = runner.message_hub.log_scalars['train/distill_factor'].data
    assert runner.iter == 4 and list(factors) == [0.25, 0.25, 0.5, 0.5]


@pytest.mark.parametrize('options, message', [
    (dict(), 'one of warmup_iters'), (dict(warmup_iters=10, warmup_epochs=1), 'one of warmup_iters'),
    (dict(warmup_epochs=-1), 'warmup_epochs must be an integer >= 0'),
    (dict(warmup_iters=2.5), 'warmup_iters must be an integer >= 0')])
def test_warmup_hook_options_are_checked(options, message):
    with pytest.raises(ValueError, match=message):
        DistillWarmupHook(**options)


def test_epoch_warmup_refuses_an_iteration_loop():
    runner = SimpleNamespace(train_loop=SimpleNamespace(max_iters=100))
    with pytest.raises(ValueError, match='needs an epoch-based train loop.*use warmup_iters'):
        DistillWarmupHook(warmup_epochs=2).before_train(runner)
    assert [DistillWarmupHook(warmup_iters=4).factor(i) for i in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert [DistillWarmupHook(warmup_epochs=0).factor(0, e) for e in range(2)] == [1.0, 1.0]

def test_losses_are_the_same_from_the_mmseg_and_mmpretrain_registries():
    torch.manual_seed(0)
    student, teacher = torch.randn(8, 10, dtype=torch.float64), 3 * torch.randn(8, 10, dtype=torch.float64)
    labels = torch.randint(0, 10, (8, ))
    for cfg in (dict(type='GDKDLoss', k=5, w0=1.0, w1=1.0, w2=8.0, temperature=4.0, ignore_index=-1),
                dict(type='DKDLoss', alpha=0.5, beta=0.5, temperature=1.0, ignore_index=-1),
                dict(type='KDLoss', temperature=4.0, ignore_index=-1)):
        seg_loss, cls_loss = SEG_MODELS.build(dict(cfg)), MODELS.build(dict(cfg))
        assert type(seg_loss) is type(cls_loss)
        seg_out = distill_loss_dict(torch.nn.ModuleDict({'loss_x': seg_loss}), student, teacher, labels, 'd', 1.0)
        cls_out = distill_loss_dict(torch.nn.ModuleDict({'loss_x': cls_loss}), student, teacher, labels, 'd', 1.0)
        assert seg_out.keys() == cls_out.keys() and len(seg_out) > 1
        for key in seg_out:
            assert torch.equal(seg_out[key], cls_out[key]), (cfg['type'], key)


@pytest.fixture(scope='session')
def zoo_teacher_ckpts(tmp_path_factory) -> Callable[[str], str]:
    """``teacher config -> checkpoint`` written on first use, standing in for the zoo checkpoints."""
    folder, written = tmp_path_factory.mktemp('zoo_teachers'), {}

    def checkpoint(teacher: str) -> str:
        if teacher not in written:
            written[teacher] = write_classifier_checkpoint(teacher_model_config(teacher),
                                                           str(folder / f'teacher_{len(written)}.pth'))
        return written[teacher]
    return checkpoint


@pytest.mark.parametrize('name', sorted(SHIPPED))
def test_shipped_config_builds_its_distiller(name, zoo_teacher_ckpts):
    expected = SHIPPED[name]
    cfg = Config.fromfile(config_path('cls', name))
    assert cfg.default_scope == 'mmpretrain' and 'gdkd_seg' in cfg.custom_imports.imports
    # the teacher checkpoint is mmpretrain's zoo checkpoint of the teacher config
    with open(osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'configs', 'resnet', 'metafile.yml')) as file:
        zoo = {entry['Weights']: entry['Config'] for entry in yaml.safe_load(file)['Models']}
    assert zoo[cfg.model.teacher_ckpt] == 'configs/' + cfg.model.teacher[len('mmpretrain::'):]
    assert cfg.custom_hooks == [dict(type='DistillWarmupHook', warmup_epochs=expected['warmup_epochs'])]
    assert cfg.optim_wrapper.optimizer.lr == expected['lr']

    cfg.model.teacher_ckpt = zoo_teacher_ckpts(cfg.model.teacher)
    distiller = build_distiller(cfg.model, cfg.data_preprocessor)
    assert type(distiller).__name__ == 'ClsDistiller' and distiller.teacher is not None
    assert not distiller.teacher.training and not any(p.requires_grad for p in distiller.teacher.parameters())
    assert distiller.student.head.num_classes == distiller.teacher.head.num_classes == cfg.data_preprocessor.num_classes
    loss = distiller.distill_losses[expected['loss']]
    assert type(loss).__name__ == expected['type'] and len(distiller.distill_losses) == 1
    assert {key: loss.options[key] for key in expected['options']} == expected['options']
    assert loss.options['ignore_index'] == -1  # set by ClsDistiller: ImageNet's class 255 must not be ignored


def test_batch_augments_with_dkd_are_refused(cifar_config, image_folder, tiny_teacher_ckpt, tmp_path):
    model_cfg = tiny_model_cfg(cifar_config, image_folder, tiny_teacher_ckpt, tmp_path)
    model_cfg.distill_losses = dict(loss_dkd=dict(type='DKDLoss', alpha=0.5, beta=0.5))
    with_mixup = copy.deepcopy(model_cfg)
    with_mixup.student.train_cfg = dict(augments=dict(type='Mixup', alpha=0.8))
    with pytest.raises(ValueError, match=r"\['loss_dkd'\].*batch_augments \['Mixup'\].*GDKDLoss / KDLoss"):
        build_distiller(with_mixup)
    with_cutmix = copy.deepcopy(model_cfg)
    with_cutmix.data_preprocessor.batch_augments = dict(augments=[dict(type='CutMix', alpha=1.0)])
    with pytest.raises(ValueError, match='CutMix'):
        build_distiller(with_cutmix)


def test_gdkd_with_mixup_trains_without_labels(cifar_config, image_folder, tiny_teacher_ckpt, tmp_path):
    model_cfg = tiny_model_cfg(cifar_config, image_folder, tiny_teacher_ckpt, tmp_path)
    model_cfg.student.train_cfg = dict(augments=dict(type='Mixup', alpha=0.8))
    distiller = build_distiller(model_cfg).train()
    samples = [DataSample().set_gt_label(index % len(CLASSES)) for index in range(4)]
    data = distiller.data_preprocessor(
        dict(inputs=[torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8) for _ in samples], data_samples=samples),
        training=True)
    assert 'gt_score' in data['data_samples'][0]
    assert distiller._distill_labels(data['data_samples']) is None
    losses = distiller(**data, mode='loss')
    assert {'cls.loss', 'distill.loss_gdkd'} <= losses.keys()
    assert all(torch.isfinite(value).all() for value in losses.values())


def test_predict_and_tensor_modes_are_the_students(cifar_config, image_folder, tiny_teacher_ckpt, tmp_path):
    distiller = build_distiller(tiny_model_cfg(cifar_config, image_folder, tiny_teacher_ckpt, tmp_path)).eval()
    inputs = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ours = distiller(inputs, [DataSample(), DataSample()], mode='predict')
        students = distiller.student.predict(inputs, [DataSample(), DataSample()])
        tensor_mode = distiller(inputs, mode='tensor')
        student_tensor = distiller.student(inputs, mode='tensor')
    for mine, theirs in zip(ours, students):
        assert torch.equal(mine.pred_score, theirs.pred_score)
        assert torch.equal(mine.pred_label, theirs.pred_label)
    assert torch.equal(tensor_mode, student_tensor)


def test_evaluation_build_needs_no_teacher(cifar_config, image_folder, tiny_teacher_ckpt, tmp_path):
    model_cfg = tiny_model_cfg(cifar_config, image_folder, tiny_teacher_ckpt, tmp_path)
    model_cfg.teacher, model_cfg.teacher_ckpt = None, None
    distiller = build_distiller(model_cfg)
    assert distiller.teacher is None
    assert not any(key.startswith('teacher') for key in distiller.state_dict())
    with pytest.raises(RuntimeError, match='without a teacher'):
        distiller.loss(torch.randn(1, 3, 32, 32), [DataSample().set_gt_label(0)])


@pytest.mark.parametrize('change, error, message', [
    (dict(teacher_ckpt=None), ValueError, 'teacher_ckpt is required'),
    (dict(teacher_ckpt='/nonexistent/teacher.pth'), FileNotFoundError, 'does not exist'),
    (dict(teacher=tiny_classifier(8, num_classes=5)), ValueError, 'num_classes=5 but student has 6'),
    (dict(teacher=dict(tiny_classifier(8), data_preprocessor=dict(mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0]))),
     ValueError, 'teacher data_preprocessor.mean'),
    (dict(distill_losses=dict(loss_gdkd=dict(type='GDKDLoss', ignore_index=1))), ValueError,
     'ignore_index=1 is one of'),
    (dict(distill_losses=dict(gdkd=dict(type='GDKDLoss'))), ValueError, "must start with 'loss'"),
    (dict(distill_losses=dict(loss_gdkd=dict(type='GDKDLoss', k=7))), ValueError,
     r'distill_losses\.loss_gdkd: k=7 is larger than the number of classes C=6'),
    (dict(teacher_precision='float16'), ValueError, "teacher_precision='float16' is not one of 'fp32', 'bf16'"),
])
def test_bad_distiller_config_fails_before_training(cifar_config, image_folder, tiny_teacher_ckpt, tmp_path, change,
                                                    error, message):
    model_cfg = tiny_model_cfg(cifar_config, image_folder, tiny_teacher_ckpt, tmp_path)
    model_cfg.update(change)
    with pytest.raises(error, match=message):
        build_distiller(model_cfg)


def test_bf16_channels_last_teacher_hands_float32_logits_close_to_fp32(cifar_config, image_folder, tiny_teacher_ckpt,
                                                                       tmp_path):
    model_cfg = tiny_model_cfg(cifar_config, image_folder, tiny_teacher_ckpt, tmp_path)
    exact = build_distiller(model_cfg)
    fast = build_distiller(dict(model_cfg, teacher_precision='bf16', teacher_channels_last=True))
    fast.student.load_state_dict(exact.student.state_dict())
    stem = fast.teacher.backbone.conv1.weight
    assert stem.is_contiguous(memory_format=torch.channels_last) and stem.dtype == torch.float32

    torch.manual_seed(0)
    inputs = torch.randn(4, 3, 32, 32)
    samples = [DataSample().set_gt_label(label) for label in range(4)]
    reference, logits = exact.teacher_logits(inputs), fast.teacher_logits(inputs)
    assert logits.dtype == torch.float32 and not torch.equal(logits, reference)
    assert (logits - reference).abs().max() <= 2 ** -6 * reference.abs().max()

    losses = fast.train().loss(inputs, samples)
    sum(value for key, value in losses.items() if 'loss' in key).backward()
    assert losses['distill.loss_gdkd'].item() == pytest.approx(
        exact.train().loss(inputs, samples)['distill.loss_gdkd'].item(), rel=5e-3)
    assert not fast.teacher.training
    assert all(param.grad is None and not param.requires_grad for param in fast.teacher.parameters())
