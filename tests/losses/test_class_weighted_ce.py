"""Tests of ClassWeightedCrossEntropyLoss: MMSeg's CrossEntropyLoss with class weights beside ignored pixels."""
import pytest
import torch
import torch.nn.functional as F
from mmseg.models.losses import CrossEntropyLoss
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

from gdkd_seg.losses import ClassWeightedCrossEntropyLoss

NUM_CLASSES = 5


def _batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, NUM_CLASSES, 6, 7, generator=generator, dtype=torch.float64)
    label = torch.randint(0, NUM_CLASSES, (2, 6, 7), generator=generator)
    label[0, :2] = 255  # ignored pixels, which MMSeg's class-weighted CrossEntropyLoss cannot take
    class_weight = torch.rand(NUM_CLASSES, generator=generator, dtype=torch.float64) * 3 + 0.2
    return logits, label, class_weight


def test_weighted_mean_over_labelled_pixels_matches_float64_reference():
    logits, label, class_weight = _batch()
    loss = ClassWeightedCrossEntropyLoss(class_weight=class_weight.tolist(), loss_weight=0.4)
    got = loss(logits, label, ignore_index=255)
    # Independent reference: the definition written out, sum_i w[y_i] CE_i / sum_i w[y_i] over labelled pixels.
    labelled = label != 255
    log_probs = logits.log_softmax(1).permute(0, 2, 3, 1)[labelled]
    targets = label[labelled]
    pixel_weights = class_weight[targets]
    expected = 0.4 * (-(log_probs[torch.arange(len(targets)), targets]) * pixel_weights).sum() / pixel_weights.sum()
    assert got.dtype == torch.float64
    # MMSeg's reduction divides by (sum of weights + float32 eps): a relative 1e-9 here, nothing more.
    torch.testing.assert_close(got, expected, rtol=1e-8, atol=0)
    torch.testing.assert_close(got, 0.4 * F.cross_entropy(logits, label, weight=class_weight, ignore_index=255))


def test_mmseg_loss_with_class_weights_fails_on_ignored_pixels_where_this_one_works():
    """Why the class exists: MMSeg 1.2.2's CrossEntropyLoss indexes the class weights with label 255."""
    logits, label, class_weight = _batch(1)
    with pytest.raises(IndexError):
        CrossEntropyLoss(class_weight=class_weight.tolist())(logits, label, ignore_index=255)
    assert torch.isfinite(ClassWeightedCrossEntropyLoss(class_weight=class_weight.tolist())(logits, label,
                                                                                          ignore_index=255))


def test_pixel_weights_and_gradients():
    logits, label, class_weight = _batch(2)
    logits.requires_grad_(True)
    pixel_weight = torch.rand(label.shape, dtype=torch.float64)
    got = ClassWeightedCrossEntropyLoss(class_weight=class_weight.tolist())(logits, label, weight=pixel_weight,
                                                                           ignore_index=255)
    per_pixel = F.cross_entropy(logits, label, weight=class_weight, ignore_index=255, reduction='none')
    labelled = label != 255
    expected = (per_pixel * pixel_weight).sum() / (class_weight[label[labelled]] * pixel_weight[labelled]).sum()
    torch.testing.assert_close(got, expected)
    got.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad[0, :, :2].abs().max() == 0  # ignored: no gradient


def test_all_ignored_gives_zero_and_no_class_weight_is_mmseg_unchanged():
    logits, label, class_weight = _batch(3)
    void = torch.full_like(label, 255)
    assert ClassWeightedCrossEntropyLoss(class_weight=class_weight.tolist())(logits, void, ignore_index=255) == 0
    torch.testing.assert_close(ClassWeightedCrossEntropyLoss()(logits, label, ignore_index=255),
                               CrossEntropyLoss()(logits, label, ignore_index=255))


def test_built_from_a_config_and_sigmoid_refused():
    register_all_modules(init_default_scope=False)
    loss = MODELS.build(dict(type='ClassWeightedCrossEntropyLoss', class_weight=[1.0] * NUM_CLASSES,
                             loss_weight=0.4))
    assert isinstance(loss, ClassWeightedCrossEntropyLoss) and loss.loss_name == 'loss_ce'
    with pytest.raises(ValueError, match='softmax'):
        ClassWeightedCrossEntropyLoss(use_sigmoid=True)
