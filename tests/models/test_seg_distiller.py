"""SegDistiller on the real MMSeg/MMEngine stack: a training step, frozen teacher, checkpoints, bad input."""
import argparse
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config, DictAction
from mmengine.runner import Runner
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from gdkd_seg.benchmark.distiller import random_seg_batch
from gdkd_seg.checkpoint.loading import load_checkpoint_file
from gdkd_seg.datasets.checks import check_data_roots
from gdkd_seg.engine.distributed import syncbn_to_bn
from tests.support import (
    assert_student_trained_teacher_frozen,
    config_path,
    tiny_data_options,
    write_teacher_checkpoint,
)

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

    checkpoint = load_checkpoint_file(osp.join(str(tmp_path), 'iter_1.pth'))
    keys = checkpoint['state_dict'].keys()
    assert keys and all(key.startswith('student.') for key in keys)
    assert not any(key.startswith('teacher') for key in keys)


def test_predict_is_the_students(toy_data_root, toy_teacher_ckpt, tmp_path):
    cfg = toy_distill_config(toy_data_root, toy_teacher_ckpt, str(tmp_path))
    distiller = MODELS.build(cfg.model).eval()
    inputs = torch.randn(1, 3, 64, 128)
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


# --------------------------------------------------------------------------------------------------------------
# Any MMSeg student or teacher: no, one or several auxiliary heads; a cascade decode head (OCRNet)
# --------------------------------------------------------------------------------------------------------------
def segmentor_variant(model_cfg: dict, auxiliary: str = 'one', cascade: bool = False, aux_classes: int = 19) -> dict:
    """A copy of a toy EncoderDecoder config (SyncBN as BN) with ``auxiliary`` ``'none'``, ``'one'`` (its FCN head
    on ResNet stage 3) or ``'two'`` (plus one on stage 2) auxiliary heads predicting ``aux_classes`` classes; with
    ``cascade``, OCRNet's layout: an FCN stage on stage 3, then an OCRHead on stage 4 reading the FCN logits."""
    cfg = copy.deepcopy(model_cfg)
    syncbn_to_bn(cfg)
    aux = dict(cfg.pop('auxiliary_head'), num_classes=aux_classes)
    if auxiliary == 'one':
        cfg['auxiliary_head'] = aux
    elif auxiliary == 'two':
        cfg['auxiliary_head'] = [aux, dict(aux, in_index=1, in_channels=aux['in_channels'] // 2)]
    if cascade:
        head = cfg['decode_head']
        ocr = dict(type='OCRHead', in_channels=head['in_channels'], in_index=3, channels=head['channels'],
                   ocr_channels=head['channels'] // 2, dropout_ratio=0.1, num_classes=head['num_classes'],
                   norm_cfg=head['norm_cfg'], align_corners=False, loss_decode=head['loss_decode'])
        cfg.update(type='CascadeEncoderDecoder', num_stages=2, decode_head=[dict(aux, num_classes=19), ocr])
    return cfg


def distiller_of(student: dict, teacher: dict, aux_distill_weight: float, tmp_path, toy_data_root: str,
                 toy_teacher_ckpt: str):
    """The toy GDKD distiller with this student and teacher (random weights, saved as its checkpoint)."""
    cfg = toy_distill_config(toy_data_root, toy_teacher_ckpt, str(tmp_path)).model
    # item assignment replaces (ConfigDict.update would merge into the toy student's heads)
    cfg['student'], cfg['teacher'], cfg['aux_distill_weight'] = student, teacher, aux_distill_weight
    cfg['teacher_ckpt'] = write_teacher_checkpoint(teacher, str(tmp_path / 'teacher.pth'))
    return MODELS.build(cfg)


def toy_student_and_teacher(toy_data_root: str, toy_teacher_ckpt: str, tmp_path) -> tuple:
    cfg = toy_distill_config(toy_data_root, toy_teacher_ckpt, str(tmp_path)).model
    return cfg.student, Config.fromfile(config_path('demo', 'teacher_toy.py')).model


SMALL_BATCH_SIZE = (32, 64)  # the toy models' 1/8 logits: 4x8


def train_one_step(distiller) -> dict:
    """One SGD step on a random batch; the student's backbone and heads learn, the teacher stays frozen."""
    torch.manual_seed(0)
    inputs, samples = random_seg_batch(2, SMALL_BATCH_SIZE, num_classes=19)
    student_before = copy.deepcopy(distiller.student.state_dict())
    teacher_before = copy.deepcopy(distiller.teacher.state_dict())
    optimizer = torch.optim.SGD(distiller.parameters(), lr=0.1)
    losses = distiller.train().loss(inputs, samples)
    sum(value for key, value in losses.items() if 'loss' in key).backward()
    optimizer.step()
    assert all(torch.isfinite(value).all() for value in losses.values())
    assert_student_trained_teacher_frozen(distiller, student_before, teacher_before, 'decode_head')
    return losses


@pytest.mark.parametrize('student_aux, teacher_aux', [('none', 'none'), ('none', 'one')])
def test_student_without_auxiliary_head_trains(toy_data_root, toy_teacher_ckpt, tmp_path, student_aux, teacher_aux):
    student, teacher = toy_student_and_teacher(toy_data_root, toy_teacher_ckpt, tmp_path)
    distiller = distiller_of(segmentor_variant(student, student_aux), segmentor_variant(teacher, teacher_aux), 0.0,
                             tmp_path, toy_data_root, toy_teacher_ckpt)
    assert not hasattr(distiller.student, 'auxiliary_head')  # as MMSeg builds it: no attribute at all
    losses = train_one_step(distiller)
    assert {'decode.loss_ce', 'distill.loss_gdkd'} <= set(losses)
    assert not any(key.startswith(('aux', 'distill_aux')) for key in losses)
    assert losses['distill.loss_gdkd'] > 0


def test_several_auxiliary_heads_are_distilled_pairwise_by_position(toy_data_root, toy_teacher_ckpt, tmp_path):
    student, teacher = toy_student_and_teacher(toy_data_root, toy_teacher_ckpt, tmp_path)
    distiller = distiller_of(segmentor_variant(student, 'two'), segmentor_variant(teacher, 'two'), 0.4, tmp_path,
                             toy_data_root, toy_teacher_ckpt)
    losses = train_one_step(distiller)
    for index in (0, 1):
        assert {f'aux_{index}.loss_ce', f'distill_aux_{index}.loss_gdkd', f'distill_aux_{index}.gdkd_kl_mass'} <= \
            set(losses)

    # eval mode (no dropout): each value is the loss of the i-th student head against the i-th teacher head
    inputs, samples = random_seg_batch(2, SMALL_BATCH_SIZE, num_classes=19)
    gt = torch.stack([sample.gt_sem_seg.data for sample in samples])
    with torch.no_grad():
        losses = distiller.eval().loss(inputs, samples)
        student_features = distiller.student.extract_feat(inputs)
        teacher_features = distiller.teacher.extract_feat(inputs)
        gdkd = distiller.distill_losses['loss_gdkd']
        for index in (0, 1):
            expected = 0.4 * gdkd(distiller.student.auxiliary_head[index](student_features),
                                  distiller.teacher.auxiliary_head[index](teacher_features), gt)
            assert losses[f'distill_aux_{index}.loss_gdkd'].item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize('student_cascade, teacher_cascade', [(True, True), (False, True)])
def test_cascade_decode_heads_distil_their_last_stage(toy_data_root, toy_teacher_ckpt, tmp_path, student_cascade,
                                                      teacher_cascade):
    """OCRNet's layout (an FCN stage whose logits the OCR stage reads) as student and teacher, or as teacher of a
    plain EncoderDecoder."""
    student, teacher = toy_student_and_teacher(toy_data_root, toy_teacher_ckpt, tmp_path)
    distiller = distiller_of(segmentor_variant(student, 'none', student_cascade),
                             segmentor_variant(teacher, 'none', teacher_cascade), 0.0, tmp_path, toy_data_root,
                             toy_teacher_ckpt)
    losses = train_one_step(distiller)
    decode_keys = {'decode_0.loss_ce', 'decode_1.loss_ce'} if student_cascade else {'decode.loss_ce'}
    assert {key for key in losses if key.startswith('decode') and 'loss' in key} == decode_keys

    # the prediction logits, as MMSeg's own forward computes them (the last stage of a cascade)
    inputs, samples = random_seg_batch(2, SMALL_BATCH_SIZE, num_classes=19)
    gt = torch.stack([sample.gt_sem_seg.data for sample in samples])
    with torch.no_grad():
        losses = distiller.eval().loss(inputs, samples)
        student_logits = distiller.student._forward(inputs)
        expected = distiller.distill_losses['loss_gdkd'](student_logits, distiller.teacher._forward(inputs), gt)
        assert torch.equal(distiller.student_logits(inputs), student_logits)  # what the analysis tools read
    assert losses['distill.loss_gdkd'].item() == pytest.approx(expected.item(), rel=1e-5)
    last_stage = distiller.student.decode_head[-1] if student_cascade else distiller.student.decode_head
    assert distiller.decode_head is last_stage


@pytest.mark.parametrize('student_aux, teacher_aux, weight, aux_classes, message', [
    ('none', 'one', 0.4, 19, 'aux_distill_weight=0.4 but the student .* has no auxiliary head to distil; set '
                             'model.aux_distill_weight=0'),
    ('one', 'none', 0.4, 19, 'the student has 1 and the teacher 0; .*or set model.aux_distill_weight=0'),
    ('two', 'one', 0.4, 19, 'the student has 2 and the teacher 1'),
    ('one', 'two', 0.4, 19, 'the student has 1 and the teacher 2'),
    ('one', 'one', 0.4, 7, "student auxiliary head 0 predicts 19 classes but the teacher's predicts 7"),
    ('one', 'one', -0.4, 19, r'aux_distill_weight=-0.4 must be a finite number >= 0'),
    ('one', 'one', float('nan'), 19, r'aux_distill_weight=nan must be a finite number >= 0'),
    ('one', 'one', float('inf'), 19, r'aux_distill_weight=inf must be a finite number >= 0'),
])
def test_auxiliary_heads_that_cannot_pair_are_refused(toy_data_root, toy_teacher_ckpt, tmp_path, student_aux,
                                                      teacher_aux, weight, aux_classes, message):
    student, teacher = toy_student_and_teacher(toy_data_root, toy_teacher_ckpt, tmp_path)
    with pytest.raises(ValueError, match=message):
        distiller_of(segmentor_variant(student, student_aux),
                     segmentor_variant(teacher, teacher_aux, aux_classes=aux_classes), weight, tmp_path, toy_data_root,
                     toy_teacher_ckpt)


def test_cascade_teacher_of_other_classes_is_refused_before_its_build(toy_data_root, toy_teacher_ckpt, tmp_path):
    student, teacher = toy_student_and_teacher(toy_data_root, toy_teacher_ckpt, tmp_path)
    teacher = segmentor_variant(teacher, 'none', cascade=True)
    teacher['decode_head'][-1]['num_classes'] = 7
    cfg = toy_distill_config(toy_data_root, toy_teacher_ckpt, str(tmp_path)).model
    cfg['teacher'], cfg['teacher_ckpt'] = teacher, '/nonexistent/teacher.pth'  # never read: the class check is first
    with pytest.raises(ValueError, match='num_classes=7 but student has 19'):
        MODELS.build(cfg)
