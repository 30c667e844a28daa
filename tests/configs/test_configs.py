"""Every shipped Cityscapes config loads, builds the intended teacher, student and loss, and keeps the reference
schedule, so a comparison between configs compares only what its name says. The other benchmarks' configs (ADE20K,
COCO-Stuff-164k, VOC-aug; Tiny-ImageNet, CUB-200) keep MMSeg's / the GDKD authors' settings, build, and train one
iteration and evaluate on a tiny generated dataset in their dataset's own folder layout.

Nothing is downloaded: student ImageNet weights are switched off, and each teacher loads a random-weight checkpoint
written here (one per teacher architecture per session). No forward pass runs at the configs' full crops.
"""
import copy
import glob
import os.path as osp
import uuid

import pytest
import torch
from mmengine.config import Config
from mmengine.fileio import load
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmengine.structures import PixelData
from mmpretrain.registry import MODELS as CLS_MODELS
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from gdkd_seg.benchmark.data_throughput import workers_needed
from gdkd_seg.datasets.checks import check_data_roots, check_dataset_files
from gdkd_seg.engine.distributed import syncbn_to_bn
from gdkd_seg.models import teacher_model_config
from tests.configs.dataset_layouts import make_ade20k, make_coco_stuff164k, make_cub, make_tiny_imagenet, make_voc12aug
from tests.support import REPO_ROOT, config_path, write_teacher_checkpoint

MMSEG_CONFIGS = osp.join(osp.dirname(__import__('mmseg').__file__), '.mim', 'configs')
REFERENCE = 'gdkd/deeplabv3_r101_to_r18_cityscapes.py'

DEEPLABV3_R101 = 'mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024.py'
PSPNET_R101 = 'mmseg::pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py'
DEEPLABV3_R18 = 'mmseg::deeplabv3/deeplabv3_r18-d8_4xb2-80k_cityscapes-512x1024.py'
PSPNET_R18 = 'mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py'
MOBILENETV2 = 'mmseg::mobilenet_v2/mobilenet-v2-d8_deeplabv3_4xb2-80k_cityscapes-512x1024.py'

SEGFORMER_B0 = 'mmseg::segformer/segformer_mit-b0_8xb1-160k_cityscapes-1024x1024.py'
TEACHER_HEADS = {DEEPLABV3_R101: 'ASPPHead', PSPNET_R101: 'PSPHead'}

GDKD = ('loss_gdkd', 'GDKDLoss', dict(k=3, w0=1.0, w1=1.0, w2=2.0, temperature=1.0), 1.0)
# the DIST authors' Cityscapes settings, on every pixel (their code reads no labels)
DIST = ('loss_dist', 'DISTLoss', dict(beta=1.0, gamma=1.0, temperature=1.0, per_image_intra=False, ignore_index=-1),
        1.0)
# GDKD + DIST: GDKD and, as a second entry, DIST's intra-class term at GDKD's T with the authors' weight
GDKD_DIST = (GDKD, ('loss_dist_intra', 'DISTLoss', dict(beta=0.0, gamma=1.0, temperature=1.0, ignore_index=-1), 1.0))
KD = ('loss_kd', 'KDLoss', dict(temperature=1.0), 1.0)
DKD_1_2 = ('loss_dkd', 'DKDLoss', dict(alpha=1.0, beta=2.0, temperature=1.0), 1.0)
CWD = ('loss_cwd', 'CWDLoss', dict(temperature=1.0), 5.0)
# student -> its MMSeg config, backbone (class, ResNet depth), (decode head, auxiliary head or None)
STUDENTS = {
    'r18': (DEEPLABV3_R18, ('ResNetV1c', 18), ('ASPPHead', 'FCNHead')),
    'pspnet_r18': (PSPNET_R18, ('ResNetV1c', 18), ('PSPHead', 'FCNHead')),
    'mobilenetv2': (MOBILENETV2, ('MobileNetV2', None), ('ASPPHead', 'FCNHead')),
    'segformer': (SEGFORMER_B0, ('MixVisionTransformer', None), ('SegformerHead', None)),
}

# config -> teacher config (None: no distillation), student (a STUDENTS key), (loss key, loss class, options,
# loss_weight), aux_distill_weight: the authors' 0.4 for ResNet students, 0 for MobileNetV2 (no auxiliary
# distillation, as the authors), SegFormer (no auxiliary head) and CWD (decode logits only, as MMRazor).
EXPECTED = {
    REFERENCE: (DEEPLABV3_R101, 'r18', GDKD, 0.4),
    'gdkd/pspnet_r101_to_r18_cityscapes.py': (PSPNET_R101, 'pspnet_r18', GDKD, 0.4),
    'gdkd/deeplabv3_r101_to_pspnet_r18_cityscapes.py': (DEEPLABV3_R101, 'pspnet_r18', GDKD, 0.4),
    'gdkd/deeplabv3_r101_to_mobilenetv2_cityscapes.py': (DEEPLABV3_R101, 'mobilenetv2', GDKD, 0.0),
    'gdkd/deeplabv3_r101_to_segformer_mit-b0_cityscapes.py': (DEEPLABV3_R101, 'segformer', GDKD, 0.0),
    'baselines/deeplabv3_r18_cityscapes_no_distill.py': (None, 'r18', None, None),
    'baselines/pspnet_r18_cityscapes_no_distill.py': (None, 'pspnet_r18', None, None),
    'baselines/deeplabv3_mobilenetv2_cityscapes_no_distill.py': (None, 'mobilenetv2', None, None),
}
for _student, _aux_weight in (('r18', 0.4), ('pspnet_r18', 0.4), ('mobilenetv2', 0.0)):
    EXPECTED.update({
        f'baselines/deeplabv3_r101_to_{_student}_kd_cityscapes.py': (DEEPLABV3_R101, _student, KD, _aux_weight),
        f'baselines/deeplabv3_r101_to_{_student}_dkd_cityscapes.py': (DEEPLABV3_R101, _student, DKD_1_2, _aux_weight),
        f'baselines/deeplabv3_r101_to_{_student}_cwd_cityscapes.py': (DEEPLABV3_R101, _student, CWD, 0.0),
        f'baselines/deeplabv3_r101_to_{_student}_dist_cityscapes.py': (DEEPLABV3_R101, _student, DIST, _aux_weight),
        f'gdkd/deeplabv3_r101_to_{_student}_gdkd_dist_cityscapes.py':
            (DEEPLABV3_R101, _student, GDKD_DIST, _aux_weight)})
CONFIGS = sorted(EXPECTED)
# every Cityscapes config keeps the reference's 40k schedule, except the SegFormer one (MMSeg's SegFormer recipe)
SEGFORMER = 'gdkd/deeplabv3_r101_to_segformer_mit-b0_cityscapes.py'
REFERENCE_SCHEDULE = [name for name in CONFIGS if name != SEGFORMER]
DISTILL_CONFIGS = [name for name in CONFIGS if EXPECTED[name][0] is not None]
# one config per (teacher, student) pair runs a small loss step; the baselines and GDKD + DIST only change the loss,
# and GDKD + DIST's two losses run that step once, on the reference pair
ARCHITECTURE_PAIRS = [name for name in DISTILL_CONFIGS if name.startswith('gdkd/') and 'gdkd_dist' not in name]
GDKD_DIST_STEP = 'gdkd/deeplabv3_r101_to_r18_gdkd_dist_cityscapes.py'
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
    assert shipped == sorted(CONFIGS + BENCHMARK_CONFIGS), \
        'add new configs to EXPECTED (Cityscapes) or BENCHMARK_EXPECTED in tests/configs/test_configs.py'


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
    # seg-gdkd train_kd.py: kd_loss += 0.4 * lambda_kd * criterion_kd(student aux, teacher aux); no warm-up
    assert cfg.model.aux_distill_weight == 0.4
    assert cfg.custom_hooks == []


def test_reference_loader_keeps_a_modern_gpu_fed(toy_data_root):
    """The H200 measurement of configs/README.md ("Data loader"): ~75 ms per 1024x2048 image through the pipeline on one
    core, a 54 ms distillation step at batch 2. Every config inherits the loader (test_schedule_is_the_references)."""
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


@pytest.mark.parametrize('name', REFERENCE_SCHEDULE)
def test_schedule_is_the_references(name):
    cfg, reference = load_config(name), load_config(REFERENCE)
    for key in ('optim_wrapper', 'param_scheduler', 'train_cfg', 'val_cfg', 'test_cfg', 'default_hooks',
                'auto_scale_lr', 'train_dataloader', 'val_dataloader', 'test_dataloader', 'val_evaluator'):
        assert without_scope(cfg[key]) == without_scope(reference[key]), f'{name}: {key} differs from the reference'
    student, reference_student = student_config(cfg), reference.model.student
    assert student.data_preprocessor == reference_student.data_preprocessor
    assert student.auxiliary_head.loss_decode == reference_student.auxiliary_head.loss_decode
    assert cfg.custom_hooks == reference.custom_hooks
    if EXPECTED[name][0] is None:
        assert cfg.model.type == 'EncoderDecoder'
    else:
        assert cfg.model.aux_distill_weight == EXPECTED[name][3]


def test_segformer_keeps_mmsegs_segformer_recipe():
    """MMSeg's SegFormer schedule, crop, test mode and evaluation; the loader only gets more, persistent, pinned
    workers; no distillation warm-up, as the reference."""
    cfg = load_config(SEGFORMER)
    recipe = Config.fromfile(SEGFORMER_B0.replace('mmseg::', MMSEG_CONFIGS + '/'))
    for key in ('optim_wrapper', 'param_scheduler', 'train_cfg', 'val_cfg', 'test_cfg', 'val_dataloader',
                'test_dataloader', 'val_evaluator', 'data_preprocessor'):
        assert without_scope(cfg[key]) == without_scope(recipe[key]), f'{key} differs from MMSeg\'s SegFormer recipe'
    loader = copy.deepcopy(cfg.train_dataloader)
    assert (loader.pop('num_workers'), loader.pop('pin_memory'), loader.pop('persistent_workers')) == (8, True, True)
    assert without_scope(loader) == without_scope({key: value for key, value in recipe.train_dataloader.items()
                                                   if key not in ('num_workers', 'persistent_workers')})
    assert cfg.optim_wrapper.optimizer.type == 'AdamW' and cfg.train_cfg.max_iters == 160000
    assert cfg.model.student.data_preprocessor.size == cfg.data_preprocessor.size == (1024, 1024)
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=8 * recipe.train_dataloader.batch_size)
    assert cfg.custom_hooks == [] and {'non_finite_loss', 'random_state'} <= set(cfg.default_hooks)


@pytest.mark.parametrize('name', CONFIGS)
def test_student_is_mmsegs_model(name):
    """The student (written as overrides of the reference's) equals MMSeg's config of that model."""
    assert without_scope(student_config(load_config(name))) == \
        without_scope(teacher_model_config(STUDENTS[EXPECTED[name][1]][0]).to_dict())


@pytest.mark.parametrize('name', DISTILL_CONFIGS)
def test_teacher_ckpt_is_the_zoo_weights_of_the_teacher_config(name):
    cfg = load_config(name)
    teacher = EXPECTED[name][0]
    assert cfg.model.teacher == teacher
    assert cfg.model.teacher_ckpt == zoo_weights(teacher)


def zoo_weights(teacher: str) -> str:
    """The ``Weights`` URL of an ``mmseg::`` config in MMSeg's metafile."""
    folder, filename = teacher[len('mmseg::'):].split('/')
    metafile = load(osp.join(MMSEG_CONFIGS, folder, 'metafile.yaml'))
    [weights] = [model['Weights'] for model in metafile['Models']
                 if model['Config'] == f'configs/{folder}/{filename}']
    return weights


@pytest.mark.parametrize('name', CONFIGS)
def test_model_builds(name, teacher_checkpoint):
    teacher, student_name, loss, aux_distill_weight = EXPECTED[name]
    _, (backbone, depth), (head, aux_head) = STUDENTS[student_name]
    cfg = load_config(name)
    student_cfg = student_config(cfg)
    student_cfg.pretrained = None  # never download ImageNet weights in tests
    student_cfg.backbone.pop('init_cfg', None)
    if teacher is not None:
        cfg.model.teacher_ckpt = teacher_checkpoint(teacher)
    model = build_model(cfg)

    student = model.student if teacher is not None else model
    assert type(student).__name__ == 'EncoderDecoder'
    assert type(student.backbone).__name__ == backbone
    if depth is not None:
        assert student.backbone.depth == depth
    assert type(student.decode_head).__name__ == head
    if aux_head is None:
        assert not hasattr(student, 'auxiliary_head')
    else:
        assert type(student.auxiliary_head).__name__ == aux_head
    assert 'Pretrained' not in str(student.backbone.init_cfg)
    if teacher is None:
        assert not hasattr(model, 'distill_losses')
        return

    assert type(model.teacher.backbone).__name__ == 'ResNetV1c' and model.teacher.backbone.depth == 101
    assert type(model.teacher.decode_head).__name__ == TEACHER_HEADS[teacher]
    assert not model.teacher.training and not any(p.requires_grad for p in model.teacher.parameters())
    losses = (loss, ) if isinstance(loss[0], str) else loss
    assert list(model.distill_losses) == [key for key, *_ in losses]
    for key, loss_type, options, loss_weight in losses:
        built = model.distill_losses[key]
        assert type(built).__name__ == loss_type and built.loss_weight == loss_weight
        assert {option: built.options[option] for option in options} == options
    assert model.aux_distill_weight == aux_distill_weight
    if name in ARCHITECTURE_PAIRS or name == GDKD_DIST_STEP:
        check_small_loss_step(model, [key for key, *_ in losses])


def test_each_architecture_pair_runs_a_loss_step():
    pairs = {EXPECTED[name][:2] for name in DISTILL_CONFIGS}
    assert {EXPECTED[name][:2] for name in ARCHITECTURE_PAIRS} == pairs


def test_segformer_student_trains_and_evaluates_from_the_cnn_teacher(toy_data_root, teacher_checkpoint, tmp_path):
    """The SegFormer config through MMSeg's Runner on the toy city at a 64x64 crop: one iteration of its recipe
    (AdamW with its parameter groups, LinearLR warm-up) distilling the DeepLabV3-R101 teacher's 1/8 logits (random
    weights) into the student's 1/4 ones, then a sliding-window evaluation."""
    cfg = load_config(SEGFORMER)
    to_toy_data(cfg, toy_data_root, train_batch=2)
    cfg.merge_from_dict({
        'train_cfg.max_iters': 1, 'train_cfg.val_interval': 1, 'data_preprocessor.size': TOY_CROP,
        'model.student.data_preprocessor.size': TOY_CROP, 'model.student.backbone.init_cfg': None,
        'model.student.test_cfg.crop_size': TOY_CROP, 'model.student.test_cfg.stride': (48, 48),
        'model.teacher_ckpt': teacher_checkpoint(DEEPLABV3_R101)})
    syncbn_to_bn(cfg.model)
    logged = train_and_evaluate(cfg, str(tmp_path / 'work'))
    assert logged['train/distill.loss_gdkd'] > 0 and torch.isfinite(torch.tensor(logged['train/loss']))
    assert not any('aux' in key for key in logged)
    assert 0 <= logged['val/mIoU'] <= 100


def check_small_loss_step(model, keys) -> None:
    """Teacher and student logits pair up (classes, output stride): one loss step at 32x64 instead of 512x1024;
    each distillation loss of ``keys`` is finite and positive."""
    torch.manual_seed(0)
    size = (32, 64)
    samples = []
    for _ in range(2):  # two images: the PSP head's 1x1 pooling needs more than one value per BN channel
        sample = SegDataSample(metainfo=dict(img_shape=size, ori_shape=size, pad_shape=size))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 19, (1, *size)))
        samples.append(sample)
    with torch.no_grad():
        losses = model.train().loss(torch.randn(2, 3, *size), samples)
    has_aux = hasattr(model.student, 'auxiliary_head')
    expected = {'decode.loss_ce', *(f'distill.{key}' for key in keys)} | ({'aux.loss_ce'} if has_aux else set()) | \
        ({f'distill_aux.{key}' for key in keys} if model.aux_distill_weight > 0 else set())
    assert {name for name in losses if 'loss' in name} == expected
    for loss_name in expected:
        assert torch.isfinite(losses[loss_name]).all(), loss_name
    assert all(losses[f'distill.{key}'] > 0 for key in keys)


# --------------------------------------------------------------------------------------------------------------
# The other segmentation benchmarks: ADE20K, COCO-Stuff-164k, Pascal VOC 2012 + aug
# --------------------------------------------------------------------------------------------------------------
# dataset -> MMSeg's DeepLabV3-R50 config of it (the student's recipe), the teacher config, its classes, layout maker
BENCHMARKS = {
    'ade20k': ('mmseg::deeplabv3/deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py',
               'mmseg::deeplabv3/deeplabv3_r101-d8_4xb4-80k_ade20k-512x512.py', 150, make_ade20k),
    'coco-stuff164k': ('mmseg::deeplabv3/deeplabv3_r50-d8_4xb4-80k_coco-stuff164k-512x512.py',
                       'mmseg::deeplabv3/deeplabv3_r101-d8_4xb4-80k_coco-stuff164k-512x512.py', 171,
                       make_coco_stuff164k),
    'voc12aug': ('mmseg::deeplabv3/deeplabv3_r50-d8_4xb4-40k_voc12aug-512x512.py',
                 'mmseg::deeplabv3/deeplabv3_r101-d8_4xb4-20k_voc12aug-512x512.py', 21, make_voc12aug),
}
DEEPLABV3_R50 = 'mmseg::deeplabv3/deeplabv3_r50-d8_4xb2-80k_cityscapes-512x1024.py'
# config -> (dataset, loss as in EXPECTED or None for no distillation)
BENCHMARK_EXPECTED = {
    'gdkd/deeplabv3_r101_to_r18_topp_ade20k.py':
        ('ade20k', ('loss_gdkd', 'GDKDLoss', dict(partition='topp', top_p=0.9, k_max=10, w0=1.0, w1=1.0, w2=2.0,
                                                  temperature=1.0), 1.0)),
}
for _dataset in BENCHMARKS:
    BENCHMARK_EXPECTED.update({
        f'gdkd/deeplabv3_r101_to_r18_{_dataset}.py': (_dataset, GDKD),
        f'baselines/deeplabv3_r18_{_dataset}_no_distill.py': (_dataset, None),
        f'baselines/deeplabv3_r101_to_r18_kd_{_dataset}.py': (_dataset, KD),
        f'baselines/deeplabv3_r101_to_r18_dkd_{_dataset}.py': (_dataset, DKD_1_2)})
BENCHMARK_CONFIGS = sorted(BENCHMARK_EXPECTED)
# what MMSeg's DeepLabV3 recipe of each dataset keeps; the loader only gets more, persistent, pinned workers
MMSEG_RECIPE_KEYS = ('optim_wrapper', 'param_scheduler', 'train_cfg', 'val_cfg', 'test_cfg', 'val_dataloader',
                     'test_dataloader', 'val_evaluator', 'data_preprocessor')


def mmseg_r18_student(dataset: str) -> dict:
    """MMSeg's DeepLabV3-R50 config of ``dataset`` with the changes that MMSeg's own Cityscapes R18 config makes to
    its Cityscapes R50 config (found by comparing the two, not written down here)."""
    expected = teacher_model_config(BENCHMARKS[dataset][0]).to_dict()
    r18, r50 = teacher_model_config(DEEPLABV3_R18).to_dict(), teacher_model_config(DEEPLABV3_R50).to_dict()
    expected['pretrained'] = r18['pretrained']
    for part in ('backbone', 'decode_head', 'auxiliary_head'):
        expected[part].update({key: value for key, value in r18[part].items() if r50[part].get(key) != value})
    return without_scope(expected)


@pytest.mark.parametrize('name', BENCHMARK_CONFIGS)
def test_benchmark_keeps_mmsegs_recipe_and_student(name):
    dataset, loss = BENCHMARK_EXPECTED[name]
    cfg, recipe = load_config(name), Config.fromfile(BENCHMARKS[dataset][0].replace('mmseg::', MMSEG_CONFIGS + '/'))
    for key in MMSEG_RECIPE_KEYS:
        assert without_scope(cfg[key]) == without_scope(recipe[key]), f'{name}: {key} differs from MMSeg\'s'
    loader = copy.deepcopy(cfg.train_dataloader)
    assert (loader.pop('num_workers'), loader.pop('pin_memory'), loader.persistent_workers) == (8, True, True)
    assert without_scope(loader) == without_scope({k: v for k, v in recipe.train_dataloader.items()
                                                   if k != 'num_workers'})
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=16) == dict(
        enable=False, base_batch_size=recipe.train_dataloader.batch_size * 4)
    assert {'non_finite_loss', 'random_state'} <= set(cfg.default_hooks)
    student = student_config(cfg)
    assert without_scope(student) == mmseg_r18_student(dataset)
    assert student.decode_head.num_classes == student.auxiliary_head.num_classes == BENCHMARKS[dataset][2]
    if loss is None:
        assert cfg.model.type == 'EncoderDecoder' and not cfg.get('custom_hooks')
        return
    # the authors' distillation recipe, as on Cityscapes: auxiliary head at 0.4, no warm-up
    assert not cfg.get('custom_hooks') and cfg.model.aux_distill_weight == 0.4
    assert cfg.model.teacher == BENCHMARKS[dataset][1]
    assert cfg.model.teacher_ckpt == zoo_weights(BENCHMARKS[dataset][1])
    key, loss_type, options, loss_weight = loss
    [(built_key, built)] = cfg.model.distill_losses.items()
    assert (built_key, built.pop('type'), built.pop('loss_weight')) == (key, loss_type, loss_weight)
    assert built == options


def test_benchmark_schedules():
    """ADE20K and COCO-Stuff: MMSeg's 80k schedule; VOC-aug: its 40k one; all 512x512 crops, batch 4 x 4."""
    for name in BENCHMARK_CONFIGS:
        cfg = load_config(name)
        dataset = BENCHMARK_EXPECTED[name][0]
        assert cfg.train_cfg.max_iters == (40000 if dataset == 'voc12aug' else 80000), name
        assert cfg.optim_wrapper.optimizer.lr == 0.01 and cfg.train_dataloader.batch_size == 4
        assert student_config(cfg).data_preprocessor.size == (512, 512)


@pytest.mark.parametrize('name', [name for name in BENCHMARK_CONFIGS if name.startswith('gdkd/')])
def test_benchmark_model_builds(name, teacher_checkpoint):
    """The distiller with its R101 teacher (random weights); the KD / DKD baselines differ from these only in the
    loss config, checked above, and their losses build here."""
    dataset, (key, loss_type, options, _) = BENCHMARK_EXPECTED[name]
    cfg = load_config(name)
    cfg.model.student.pretrained = None
    cfg.model.teacher_ckpt = teacher_checkpoint(BENCHMARKS[dataset][1])
    model = build_model(cfg)
    num_classes = BENCHMARKS[dataset][2]
    assert model.student.backbone.depth == 18 and model.teacher.backbone.depth == 101
    assert model.student.decode_head.num_classes == model.teacher.decode_head.num_classes == num_classes
    built = model.distill_losses[key]
    assert type(built).__name__ == loss_type
    assert {option: built.options[option] for option in options} == options
    for baseline in ('kd', 'dkd'):
        baseline_cfg = load_config(f'baselines/deeplabv3_r101_to_r18_{baseline}_{dataset}.py')
        [loss_cfg] = baseline_cfg.model.distill_losses.values()
        assert type(MODELS.build(loss_cfg)).__name__ == loss_cfg.type


TOY_CROP = (64, 64)
# pipeline step type -> (its size argument, the value at toy size)
TOY_STEP_SIZES = {
    'RandomResize': ('scale', (128, 64)), 'Resize': ('scale', (128, 64)), 'RandomCrop': ('crop_size', TOY_CROP),
    'Pad': ('size', TOY_CROP), 'RandomResizedCrop': ('scale', 64), 'ResizeEdge': ('scale', 72),
    'CenterCrop': ('crop_size', 64),
}


def to_toy_data(cfg: Config, data_root: str, train_batch: int) -> None:
    """Point every dataset of ``cfg`` (also inside a ConcatDataset) at ``data_root``, shrink the pipelines' sizes,
    load in the main process."""
    def shrink(dataset: dict) -> None:
        for inner in dataset.get('datasets', []):
            shrink(inner)
        if 'pipeline' in dataset:
            dataset.data_root = data_root
            for step in dataset.pipeline:
                if step.type in TOY_STEP_SIZES:
                    argument, value = TOY_STEP_SIZES[step.type]
                    step[argument] = value

    for split, batch_size in (('train_dataloader', train_batch), ('val_dataloader', 1)):
        shrink(cfg[split].dataset)
        cfg[split].update(batch_size=batch_size, num_workers=0, persistent_workers=False)
    cfg.test_dataloader = cfg.val_dataloader


def train_and_evaluate(cfg: Config, work_dir: str) -> dict:
    """Train as configured (one short run) with its validation, in-process; returns the logged scalars. The
    Runner's default scope (MMSeg's or mmpretrain's) ends with it, so no later test builds from the wrong registry."""

    cfg.merge_from_dict({'work_dir': work_dir, 'experiment_name': f'benchmark_{uuid.uuid4().hex}',
                         'default_hooks.logger.interval': 1})
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        runner = Runner.from_cfg(cfg)
        runner.train()
    return {key: value.current() for key, value in runner.message_hub.log_scalars.items()}


@pytest.mark.parametrize('dataset', sorted(BENCHMARKS))
def test_benchmark_trains_and_evaluates_on_its_layout(dataset, tmp_path):
    """The GDKD config of each dataset, on a tiny generated copy of that dataset's folder layout read by MMSeg's own
    dataset class: one training iteration (teacher: the student's architecture, random weights) and one evaluation
    of mIoU over all the dataset's classes."""
    cfg = load_config(f'gdkd/deeplabv3_r101_to_r18_{dataset}.py')
    to_toy_data(cfg, BENCHMARKS[dataset][3](str(tmp_path / 'data')), train_batch=2)
    cfg.merge_from_dict({'train_cfg.max_iters': 1, 'train_cfg.val_interval': 1, 'data_preprocessor.size': TOY_CROP,
                         'model.student.data_preprocessor.size': TOY_CROP, 'model.student.pretrained': None})
    # the tools' pre-flight data checks accept the layout (ADE20K's 0..150 with reduce_zero_label, VOC's lists)
    check_data_roots(cfg)
    check_dataset_files(cfg)
    syncbn_to_bn(cfg.model)
    cfg.model.teacher = copy.deepcopy(cfg.model.student)
    with DefaultScope.overwrite_default_scope('mmseg'):
        cfg.model.teacher_ckpt = write_teacher_checkpoint(cfg.model.teacher, str(tmp_path / 'teacher.pth'))
    logged = train_and_evaluate(cfg, str(tmp_path / 'work'))
    assert logged['train/distill.loss_gdkd'] > 0 and torch.isfinite(torch.tensor(logged['train/loss']))
    assert 0 <= logged['val/mIoU'] <= 100 and 'val/aAcc' in logged


# --------------------------------------------------------------------------------------------------------------
# The classification transfer benchmarks: Tiny-ImageNet and CUB-200-2011
# --------------------------------------------------------------------------------------------------------------
# config -> (layout maker, lr, milestones, loss key, loss type, options): ZaberKo/GDKD configs/TL/<set>/r34_r18/
CLS_BENCHMARKS = {
    'cls/resnet34_to_resnet18_tiny-imagenet_gdkd.py':
        (make_tiny_imagenet, 0.001, [30, 60], 'loss_gdkd', 'GDKDLoss',
         dict(k=5, w0=0.5, w1=1.0, w2=1.0, temperature=1.0)),
    'cls/resnet34_to_resnet18_tiny-imagenet_dkd.py':
        (make_tiny_imagenet, 0.001, [30, 60], 'loss_dkd', 'DKDLoss', dict(alpha=1.0, beta=0.5, temperature=1.0)),
    'cls/resnet34_to_resnet18_cub_gdkd.py':
        (make_cub, 0.0025, [40, 80], 'loss_gdkd', 'GDKDLoss', dict(k=5, w0=0.5, w1=1.0, w2=1.0, temperature=1.0)),
    'cls/resnet34_to_resnet18_cub_dkd.py':
        (make_cub, 0.0025, [40, 80], 'loss_dkd', 'DKDLoss', dict(alpha=1.0, beta=0.5, temperature=1.0)),
}
PRETRAINED_RESNET18 = ('https://download.openmmlab.com/mmclassification/v0/resnet/'
                       'resnet18_8xb32_in1k_20210831-fbbb1da6.pth')


@pytest.fixture(scope='session')
def resnet34_200_checkpoint(tmp_path_factory):
    """A random-weight checkpoint of the transfer configs' ResNet-34 teacher (200 classes)."""
    teacher = load_config('cls/resnet34_to_resnet18_cub_gdkd.py').model.teacher
    teacher.pop('data_preprocessor')
    path = str(tmp_path_factory.mktemp('resnet34') / 'teacher.pth')
    torch.manual_seed(0)
    torch.save({'state_dict': CLS_MODELS.build(teacher).state_dict()}, path)
    return path


def test_every_classification_benchmark_config_is_checked():
    shipped = {osp.relpath(path, osp.join(REPO_ROOT, 'configs')) for path in glob.glob(config_path('cls', '*.py'))}
    assert {name for name in shipped if 'tiny-imagenet' in name or 'cub' in name} == set(CLS_BENCHMARKS)


@pytest.mark.parametrize('name', sorted(CLS_BENCHMARKS))
def test_classification_benchmark_keeps_the_authors_settings(name, resnet34_200_checkpoint):
    _, lr, milestones, key, loss_type, options = CLS_BENCHMARKS[name]
    cfg = load_config(name)
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.momentum, optimizer.weight_decay) == ('SGD', lr, 0.9, 1e-3)
    assert (cfg.param_scheduler.milestones, cfg.param_scheduler.gamma, cfg.train_cfg.max_epochs) == (milestones, 0.1,
                                                                                                     100)
    assert cfg.train_dataloader.batch_size == 64 == cfg.auto_scale_lr.base_batch_size
    assert cfg.custom_hooks == []  # the authors' WARMUP: 1 gives the full weight from the first epoch
    # ImageNet's 224 train / 256-224 test transforms, as the authors' loaders
    assert [step.type for step in cfg.train_dataloader.dataset.pipeline] == \
        ['LoadImageFromFile', 'RandomResizedCrop', 'RandomFlip', 'PackInputs']
    assert cfg.train_dataloader.dataset.pipeline[1].scale == 224
    assert cfg.val_dataloader.dataset.pipeline[2].crop_size == 224
    # the student starts from mmpretrain's ImageNet ResNet-18
    assert cfg.model.student.backbone.init_cfg == dict(type='Pretrained', prefix='backbone',
                                                       checkpoint=PRETRAINED_RESNET18)
    cfg.model.student.backbone.init_cfg = None
    cfg.model.teacher_ckpt = resnet34_200_checkpoint
    distiller = CLS_MODELS.build(dict(cfg.model, data_preprocessor=cfg.data_preprocessor))
    assert (distiller.student.backbone.depth, distiller.teacher.backbone.depth) == (18, 34)
    assert distiller.student.head.num_classes == distiller.teacher.head.num_classes == 200
    [(built_key, built)] = distiller.distill_losses.items()
    assert (built_key, type(built).__name__) == (key, loss_type)
    assert {option: built.options[option] for option in options} == options


@pytest.mark.parametrize('name', ['cls/resnet34_to_resnet18_tiny-imagenet_gdkd.py',
                                  'cls/resnet34_to_resnet18_cub_dkd.py'])
def test_classification_benchmark_trains_and_evaluates_on_its_layout(name, resnet34_200_checkpoint, tmp_path):
    """One epoch and an evaluation on a tiny copy of the dataset's folder layout (Tiny-ImageNet's class folders read
    by CustomDataset, CUB's files read by mmpretrain's CUB), at 64x64 crops."""
    cfg = load_config(name)
    to_toy_data(cfg, CLS_BENCHMARKS[name][0](str(tmp_path / 'data')), train_batch=3)
    cfg.merge_from_dict({'train_cfg.max_epochs': 1, 'model.student.backbone.init_cfg': None,
                         'model.teacher_ckpt': resnet34_200_checkpoint})
    logged = train_and_evaluate(cfg, str(tmp_path / 'work'))
    key = CLS_BENCHMARKS[name][3]
    assert logged[f'train/distill.{key}'] > 0 and 0 <= logged['val/accuracy/top1'] <= 100
