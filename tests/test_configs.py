"""Every shipped Cityscapes config loads, builds the intended teacher, student and loss, and keeps the reference
schedule, so a comparison between configs compares only what its name says.

Nothing is downloaded: student ImageNet weights are switched off, and each teacher loads a random-weight checkpoint
written here (one per teacher architecture per session). No forward pass runs at the configs' 512x1024 crop.
"""
import copy
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.fileio import load
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from conftest import REPO_ROOT, config_path, write_teacher_checkpoint
from gdkd_seg.compat import syncbn_to_bn
from gdkd_seg.data_throughput import workers_needed
from gdkd_seg.models import teacher_model_config

MMSEG_CONFIGS = osp.join(osp.dirname(__import__('mmseg').__file__), '.mim', 'configs')
REFERENCE = 'gdkd/deeplabv3_r101_to_r18_cityscapes.py'

DEEPLABV3_R101 = 'mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024.py'
PSPNET_R101 = 'mmseg::pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py'
DEEPLABV3_R18 = 'mmseg::deeplabv3/deeplabv3_r18-d8_4xb2-80k_cityscapes-512x1024.py'
PSPNET_R18 = 'mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py'
MOBILENETV2 = 'mmseg::mobilenet_v2/mobilenet-v2-d8_deeplabv3_4xb2-80k_cityscapes-512x1024.py'
TEACHER_HEADS = {DEEPLABV3_R101: 'ASPPHead', PSPNET_R101: 'PSPHead'}

GDKD = ('loss_gdkd', 'GDKDLoss', dict(k=3, w0=1.0, w1=1.0, w2=2.0, temperature=1.0), 1.0)

# config -> teacher config (None: no distillation), student's MMSeg config, student backbone (class, ResNet depth),
# student decode head class, (loss key, loss class, options, loss_weight).
EXPECTED = {
    REFERENCE: (DEEPLABV3_R101, DEEPLABV3_R18, ('ResNetV1c', 18), 'ASPPHead', GDKD),
    'gdkd/pspnet_r101_to_r18_cityscapes.py': (PSPNET_R101, PSPNET_R18, ('ResNetV1c', 18), 'PSPHead', GDKD),
    'gdkd/deeplabv3_r101_to_pspnet_r18_cityscapes.py':
        (DEEPLABV3_R101, PSPNET_R18, ('ResNetV1c', 18), 'PSPHead', GDKD),
    'gdkd/deeplabv3_r101_to_mobilenetv2_cityscapes.py':
        (DEEPLABV3_R101, MOBILENETV2, ('MobileNetV2', None), 'ASPPHead', GDKD),
    'baselines/deeplabv3_r18_cityscapes_no_distill.py': (None, DEEPLABV3_R18, ('ResNetV1c', 18), 'ASPPHead', None),
    'baselines/deeplabv3_r101_to_r18_kd_cityscapes.py':
        (DEEPLABV3_R101, DEEPLABV3_R18, ('ResNetV1c', 18), 'ASPPHead',
         ('loss_kd', 'KDLoss', dict(temperature=1.0), 1.0)),
    'baselines/deeplabv3_r101_to_r18_dkd_cityscapes.py':
        (DEEPLABV3_R101, DEEPLABV3_R18, ('ResNetV1c', 18), 'ASPPHead',
         ('loss_dkd', 'DKDLoss', dict(alpha=1.0, beta=2.0, temperature=1.0), 1.0)),
    'baselines/deeplabv3_r101_to_r18_cwd_cityscapes.py':
        (DEEPLABV3_R101, DEEPLABV3_R18, ('ResNetV1c', 18), 'ASPPHead',
         ('loss_cwd', 'CWDLoss', dict(temperature=1.0), 5.0)),
}
CONFIGS = sorted(EXPECTED)
DISTILL_CONFIGS = [name for name in CONFIGS if EXPECTED[name][0] is not None]
# one config per (teacher, student) pair runs a small loss step; the baselines only change the loss
ARCHITECTURE_PAIRS = [name for name in DISTILL_CONFIGS if name.startswith('gdkd/')]
_LOADED = {}


def load_config(name: str) -> Config:
    """A deep copy of a shipped config, free to modify (each file is parsed once per session)."""
    if name not in _LOADED:
        _LOADED[name] = Config.fromfile(config_path(*name.split('/')))
    return copy.deepcopy(_LOADED[name])


def without_scope(node):
    """A plain-dict copy without MMEngine's ``_scope_`` markers (added where a config reads a ``mmseg::`` base)."""
    if isinstance(node, dict):
        return {key: without_scope(value) for key, value in node.items() if key != '_scope_'}
    if isinstance(node, (list, tuple)):
        return type(node)(without_scope(value) for value in node)
    return node


def build_model(cfg: Config):
    """Build ``cfg.model`` as the Runner would in one process: the config's default scope (MMSeg's, not leaked to
    other tests), SyncBN as BN."""
    syncbn_to_bn(cfg.model)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return MODELS.build(cfg.model)


def student_config(cfg: Config) -> dict:
    return cfg.model.student if cfg.model.type == 'SegDistiller' else cfg.model


@pytest.fixture(scope='session')
def teacher_checkpoint(tmp_path_factory):
    """``teacher config -> path`` of a random-weight checkpoint of that architecture, written once per session."""
    written = {}

    def get(teacher: str) -> str:
        if teacher not in written:
            model_cfg = teacher_model_config(teacher)
            syncbn_to_bn(model_cfg)
            path = str(tmp_path_factory.mktemp('teacher') / 'teacher.pth')
            with DefaultScope.overwrite_default_scope('mmseg'):
                written[teacher] = write_teacher_checkpoint(model_cfg, path)
        return written[teacher]

    return get


def test_every_shipped_config_is_checked():
    shipped = sorted(osp.relpath(path, osp.join(REPO_ROOT, 'configs'))
                     for folder in ('gdkd', 'baselines') for path in glob.glob(config_path(folder, '*.py')))
    assert shipped == CONFIGS, 'add new configs to EXPECTED in tests/test_configs.py'


def test_reference_schedule_is_the_authors():
    cfg = load_config(REFERENCE)
    assert cfg.train_cfg.max_iters == 40000
    assert cfg.train_dataloader.batch_size == 2 and cfg.auto_scale_lr.base_batch_size == 16
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.momentum, optimizer.weight_decay) == ('SGD', 0.02, 0.9, 5e-4)
    [scheduler] = cfg.param_scheduler
    assert (scheduler.type, scheduler.power, scheduler.end, scheduler.by_epoch) == ('PolyLR', 0.9, 40000, False)
    crops = [step.crop_size for step in cfg.train_dataloader.dataset.pipeline if step.type == 'RandomCrop']
    assert crops == [(512, 1024)] and cfg.model.student.data_preprocessor.size == (512, 1024)
    assert cfg.model.student.auxiliary_head.type == 'FCNHead'
    assert cfg.custom_hooks == [dict(type='DistillWarmupHook', warmup_iters=1000)]


def test_reference_loader_keeps_a_modern_gpu_fed(toy_data_root):
    """Issue 12's H200 measurement: ~75 ms per 1024x2048 image through the pipeline on one core, a 54 ms distillation
    step at batch 2. Every config inherits the loader (test_schedule_is_the_references)."""
    from mmengine.runner import Runner
    cfg = load_config(REFERENCE)
    loader = cfg.train_dataloader
    assert loader.num_workers >= workers_needed(loader.batch_size, 0.054, 1 / 0.075)
    assert loader.persistent_workers and loader.pin_memory
    assert (cfg.model.teacher_precision, cfg.model.teacher_channels_last) == ('fp32', False)
    # pinning is harmless without a GPU: the loader still makes its batch
    loader = copy.deepcopy(loader)
    loader.update(num_workers=0, persistent_workers=False)
    loader.dataset.data_root = toy_data_root
    with DefaultScope.overwrite_default_scope('mmseg'):
        batch = next(iter(Runner.build_dataloader(loader)))
    assert [tuple(image.shape) for image in batch['inputs']] == [(3, 512, 1024)] * 2


@pytest.mark.parametrize('name', CONFIGS)
def test_schedule_is_the_references(name):
    cfg, reference = load_config(name), load_config(REFERENCE)
    for key in ('optim_wrapper', 'param_scheduler', 'train_cfg', 'val_cfg', 'test_cfg', 'default_hooks',
                'auto_scale_lr', 'train_dataloader', 'val_dataloader', 'test_dataloader', 'val_evaluator'):
        assert without_scope(cfg[key]) == without_scope(reference[key]), f'{name}: {key} differs from the reference'
    student, reference_student = student_config(cfg), reference.model.student
    assert student.data_preprocessor == reference_student.data_preprocessor
    assert student.auxiliary_head.loss_decode == reference_student.auxiliary_head.loss_decode
    hooks = [hook.type for hook in cfg.custom_hooks]
    if EXPECTED[name][0] is None:
        assert cfg.model.type == 'EncoderDecoder' and 'DistillWarmupHook' not in hooks
    else:
        assert cfg.custom_hooks == reference.custom_hooks
        assert cfg.model.get('aux_distill_weight', 0.0) == reference.model.get('aux_distill_weight', 0.0)


@pytest.mark.parametrize('name', CONFIGS)
def test_student_is_mmsegs_model(name):
    """The student (written as overrides of the reference's) equals MMSeg's config of that model."""
    assert without_scope(student_config(load_config(name))) == \
        without_scope(teacher_model_config(EXPECTED[name][1]).to_dict())


@pytest.mark.parametrize('name', DISTILL_CONFIGS)
def test_teacher_ckpt_is_the_zoo_weights_of_the_teacher_config(name):
    cfg = load_config(name)
    teacher = EXPECTED[name][0]
    assert cfg.model.teacher == teacher
    folder, filename = teacher[len('mmseg::'):].split('/')
    metafile = load(osp.join(MMSEG_CONFIGS, folder, 'metafile.yaml'))
    [weights] = [model['Weights'] for model in metafile['Models']
                 if model['Config'] == f'configs/{folder}/{filename}']
    assert cfg.model.teacher_ckpt == weights


@pytest.mark.parametrize('name', CONFIGS)
def test_model_builds(name, teacher_checkpoint):
    teacher, _, (backbone, depth), head, loss = EXPECTED[name]
    cfg = load_config(name)
    student_cfg = student_config(cfg)
    student_cfg.pretrained = None  # never download ImageNet weights in tests
    assert 'init_cfg' not in student_cfg.backbone
    if teacher is not None:
        cfg.model.teacher_ckpt = teacher_checkpoint(teacher)
    model = build_model(cfg)

    student = model.student if teacher is not None else model
    assert type(student).__name__ == 'EncoderDecoder'
    assert type(student.backbone).__name__ == backbone
    if depth is not None:
        assert student.backbone.depth == depth
    assert type(student.decode_head).__name__ == head
    assert type(student.auxiliary_head).__name__ == 'FCNHead'
    assert 'Pretrained' not in str(student.backbone.init_cfg)
    if teacher is None:
        assert not hasattr(model, 'distill_losses')
        return

    assert type(model.teacher.backbone).__name__ == 'ResNetV1c' and model.teacher.backbone.depth == 101
    assert type(model.teacher.decode_head).__name__ == TEACHER_HEADS[teacher]
    assert not model.teacher.training and not any(p.requires_grad for p in model.teacher.parameters())
    key, loss_type, options, loss_weight = loss
    assert list(model.distill_losses) == [key]
    built = model.distill_losses[key]
    assert type(built).__name__ == loss_type and built.loss_weight == loss_weight
    assert {option: built.options[option] for option in options} == options
    if name in ARCHITECTURE_PAIRS:
        check_small_loss_step(model, key)


def test_each_architecture_pair_runs_a_loss_step():
    pairs = {EXPECTED[name][:2] for name in DISTILL_CONFIGS}
    assert {EXPECTED[name][:2] for name in ARCHITECTURE_PAIRS} == pairs


def check_small_loss_step(model, key: str) -> None:
    """Teacher and student logits pair up (classes, output stride): one loss step at 32x64 instead of 512x1024."""
    torch.manual_seed(0)
    size = (32, 64)
    samples = []
    for _ in range(2):  # two images: the PSP head's 1x1 pooling needs more than one value per BN channel
        sample = SegDataSample(metainfo=dict(img_shape=size, ori_shape=size, pad_shape=size))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 19, (1, *size)))
        samples.append(sample)
    with torch.no_grad():
        losses = model.train().loss(torch.randn(2, 3, *size), samples)
    for loss_name in ('decode.loss_ce', 'aux.loss_ce', f'distill.{key}'):
        assert torch.isfinite(losses[loss_name]).all(), loss_name
    assert losses[f'distill.{key}'] > 0
