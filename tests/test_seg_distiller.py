"""SegDistiller on the real MMSeg/MMEngine stack: a training step, frozen teacher, checkpoints, bad input."""
import argparse
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from conftest import (assert_student_trained_teacher_frozen, config_path, tiny_data_options,
                      write_teacher_checkpoint)
from gdkd_seg.benchmark import random_seg_batch
from gdkd_seg.compat import syncbn_to_bn
from gdkd_seg.datasets.checks import check_data_roots
from mmseg.registry import MODELS


pytestmark = pytest.mark.usefixtures('mmseg_scope')


def toy_distill_config(data_root: str, teacher_ckpt: str, work_dir: str, max_iters: int = 1) -> Config:
    cfg = Config.fromfile(config_path('demo', 'gdkd_toy.py'))
    cfg.merge_from_dict(tiny_data_options(data_root))
    cfg.merge_from_dict({
        'model.teacher_ckpt': teacher_ckpt, 'work_dir': work_dir, 'train_cfg.max_iters': max_iters,
        'default_hooks.checkpoint.interval': max_iters, 'default_hooks.logger.interval': 1,
        'custom_hooks': [dict(type='DistillWarmupHook', warmup_iters=2)]})
    syncbn_to_bn(cfg.model)
    return cfg


def test_one_training_iteration_updates_student_only(toy_data_root, toy_teacher_ckpt, tmp_path):
    runner = Runner.from_cfg(toy_distill_config(toy_data_root, toy_teacher_ckpt, str(tmp_path)))
    distiller = runner.model
    student_before = copy.deepcopy(distiller.student.state_dict())
    teacher_before = copy.deepcopy(distiller.teacher.state_dict())
    runner.train()

    history = runner.message_hub.log_scalars
    for key in ('train/loss', 'train/decode.loss_ce', 'train/aux.loss_ce', 'train/distill.loss_gdkd',
                'train/distill.gdkd_kl_mass', 'train/distill.gdkd_kl_top', 'train/distill.gdkd_kl_other'):
        assert key in history, f'{key} not logged; got {sorted(history)}'
        assert torch.isfinite(torch.tensor(history[key].current())), key
    # warm-up over 2 iterations: the first iteration distils at half weight
    assert history['train/distill_factor'].current() == pytest.approx(0.5)
    assert history['train/distill.loss_gdkd'].current() > 0

    assert_student_trained_teacher_frozen(distiller, student_before, teacher_before, 'decode_head')

    checkpoint = torch.load(osp.join(str(tmp_path), 'iter_1.pth'), map_location='cpu')
    keys = checkpoint['state_dict'].keys()
    assert keys and all(key.startswith('student.') for key in keys)
    assert not any(key.startswith('teacher') for key in keys)


def test_predict_is_the_students(toy_data_root, toy_teacher_ckpt, tmp_path):
    cfg = toy_distill_config(toy_data_root, toy_teacher_ckpt, str(tmp_path))
    distiller = MODELS.build(cfg.model).eval()
    inputs = torch.randn(1, 3, 64, 128)
    from mmseg.structures import SegDataSample
    sample = SegDataSample(metainfo=dict(img_shape=(64, 128), ori_shape=(64, 128), pad_shape=(64, 128)))
    with torch.no_grad():
        ours = distiller.predict(inputs, [copy.deepcopy(sample)])[0].seg_logits.data
        students = distiller.student.predict(inputs, [copy.deepcopy(sample)])[0].seg_logits.data
        tensor_mode = distiller(inputs, mode='tensor')
    assert torch.equal(ours, students)
    assert torch.equal(tensor_mode, distiller.student._forward(inputs))


def test_teacher_not_in_parameters_state_dict_or_train_mode(toy_data_root, toy_teacher_ckpt, tmp_path):
    distiller = MODELS.build(toy_distill_config(toy_data_root, toy_teacher_ckpt, str(tmp_path)).model)
    teacher_params = {id(param) for param in distiller.teacher.parameters()}
    assert teacher_params and not teacher_params & {id(param) for param in distiller.parameters()}
    assert not any(key.startswith('teacher') for key in distiller.state_dict())
    distiller.train()
    assert not distiller.teacher.training
    distiller.to(torch.float64)
    assert next(distiller.teacher.parameters()).dtype == torch.float64


def test_evaluation_build_needs_no_teacher(toy_data_root, toy_teacher_ckpt, tmp_path):
    cfg = toy_distill_config(toy_data_root, toy_teacher_ckpt, str(tmp_path)).model
    cfg.teacher, cfg.teacher_ckpt = None, None
    distiller = MODELS.build(cfg)
    assert distiller.teacher is None
    with pytest.raises(RuntimeError, match='without a teacher'):
        distiller.loss(torch.randn(1, 3, 64, 128), [])


@pytest.mark.parametrize('change, error, message', [
    (dict(teacher_ckpt=None), ValueError, 'teacher_ckpt is required'),
    (dict(teacher_ckpt='/nonexistent/teacher.pth'), FileNotFoundError, 'does not exist'),
    (dict(distill_losses=dict(gdkd=dict(type='GDKDLoss'))), ValueError, "must start with 'loss'"),
    (dict(distill_losses=dict(loss_gdkd=dict(type='GDKDLoss', kk=3))), TypeError, 'kk'),
    (dict(distill_losses=dict(loss_gdkd=dict(type='NoSuchLoss'))), KeyError, 'NoSuchLoss'),
    # the Runner hands the distiller the config's top-level data_preprocessor: a stale one must not pad silently
    (dict(data_preprocessor=dict(type='SegDataPreProcessor', size=(512, 1024))), ValueError,
     r"data_preprocessor.size=\(512, 1024\) differs from the student's \(128, 128\)"),
    (dict(teacher_precision='half'), ValueError, "teacher_precision='half' is not one of 'fp32', 'bf16', 'fp16'"),
    (dict(teacher_precision='bf16', teacher=None, teacher_ckpt=None, teacher_channels_last='yes'), ValueError,
     "teacher_channels_last='yes' must be True or False"),
])
def test_bad_distiller_config_fails_before_training(toy_data_root, toy_teacher_ckpt, tmp_path, change, error,
                                                    message):
    cfg = toy_distill_config(toy_data_root, toy_teacher_ckpt, str(tmp_path)).model
    cfg.update(change)
    with pytest.raises(error, match=message):
        MODELS.build(cfg)


def test_teacher_checkpoint_of_another_architecture_is_refused(toy_data_root, toy_teacher_ckpt, tmp_path):
    cfg = toy_distill_config(toy_data_root, toy_teacher_ckpt, str(tmp_path)).model
    other = Config.fromfile(config_path('demo', 'teacher_toy.py')).model
    other.backbone.base_channels = other.backbone.stem_channels = 16
    cfg.teacher_ckpt = write_teacher_checkpoint(other, str(tmp_path / 'other.pth'))
    with pytest.raises(RuntimeError, match='does not match the teacher config.*mis-shaped keys: backbone'):
        MODELS.build(cfg)
    state = torch.load(toy_teacher_ckpt)['state_dict']
    del state['decode_head.conv_seg.weight']
    state['extra.weight'] = torch.zeros(1)
    torch.save({'state_dict': state}, str(tmp_path / 'partial.pth'))
    cfg.teacher_ckpt = str(tmp_path / 'partial.pth')
    with pytest.raises(RuntimeError, match=r'missing keys: decode_head\.conv_seg\.weight; unexpected keys: extra'):
        MODELS.build(cfg)


def test_class_count_mismatch_is_refused(toy_data_root, toy_teacher_ckpt, tmp_path):
    cfg = toy_distill_config(toy_data_root, toy_teacher_ckpt, str(tmp_path)).model
    cfg.student.decode_head.num_classes = 7
    with pytest.raises(ValueError, match='num_classes=19 but student has 7'):
        MODELS.build(cfg)


def test_missing_data_root_names_the_path(toy_data_root, toy_teacher_ckpt, tmp_path):
    cfg = toy_distill_config(toy_data_root, toy_teacher_ckpt, str(tmp_path))
    cfg.train_dataloader.dataset.data_root = str(tmp_path / 'no_such_city')
    with pytest.raises(FileNotFoundError, match=r'no_such_city.*data/README\.md'):
        check_data_roots(cfg)
    cfg.train_dataloader.dataset.data_root = str(tmp_path)
    with pytest.raises(FileNotFoundError, match='leftImg8bit/train'):
        check_data_roots(cfg)



def cfg_options_of(*arguments: str) -> dict:
    """What ``--cfg-options ARGUMENTS`` gives the tools (MMEngine's DictAction parses the values)."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(['--cfg-options', *arguments]).cfg_options


@pytest.mark.parametrize('precision, channels_last', [('fp16', False), ('bf16', True)])
def test_teacher_precision_hands_float32_logits_close_to_fp32(toy_data_root, toy_teacher_ckpt, tmp_path, precision,
                                                              channels_last):
    cfg = toy_distill_config(toy_data_root, toy_teacher_ckpt, str(tmp_path))
    exact = MODELS.build(cfg.model)
    cfg.merge_from_dict(cfg_options_of(f'model.teacher_precision={precision}',
                                       f'model.teacher_channels_last={channels_last}'))
    fast = MODELS.build(cfg.model)
    fast.student.load_state_dict(exact.student.state_dict())
    assert (fast.teacher_precision, fast.teacher_channels_last) == (precision, channels_last)
    # (1x1 kernels are contiguous in both layouts)
    conv_weights = [module.weight for module in fast.teacher.modules()
                    if isinstance(module, torch.nn.Conv2d) and module.kernel_size != (1, 1)]
    assert all(weight.is_contiguous(memory_format=torch.channels_last) == channels_last and
               weight.dtype == torch.float32 for weight in conv_weights)

    torch.manual_seed(0)
    inputs = torch.randn(2, 3, 64, 128)
    reference, _ = exact.teacher_logits(inputs)
    logits, _ = fast.teacher_logits(inputs)
    assert logits.dtype == torch.float32 and logits.is_contiguous()
    # the forward did run at lower precision, and stays within its rounding (bf16: 8 significant bits)
    assert not torch.equal(logits, reference)
    assert (logits - reference).abs().max() <= 2 ** -6 * reference.abs().max()

    _, samples = random_seg_batch(2, (64, 128), num_classes=19)
    teacher_before = copy.deepcopy(fast.teacher.state_dict())
    torch.manual_seed(1)  # the same dropout in both students
    losses = fast.train().loss(inputs, samples)
    sum(value for key, value in losses.items() if 'loss' in key).backward()
    torch.manual_seed(1)
    exact_loss = exact.train().loss(inputs, samples)['distill.loss_gdkd']
    assert losses['distill.loss_gdkd'].item() == pytest.approx(exact_loss.item(), rel=5e-3)
    assert not fast.teacher.training
    assert all(param.grad is None and not param.requires_grad for param in fast.teacher.parameters())
    assert all(torch.equal(value, teacher_before[key]) for key, value in fast.teacher.state_dict().items())
