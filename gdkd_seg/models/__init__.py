"""Distiller models: ``SegDistiller`` (MMSeg) and the frozen-teacher helpers they share; a class-weighted
cross-entropy for MMSeg decode heads."""
from .class_weighted_ce import ClassWeightedCrossEntropyLoss, class_weighted_cross_entropy
from .cls_distiller import ClsDistiller
from .seg_distiller import SegDistiller
from .teacher import build_frozen_teacher, load_teacher_weights, teacher_model_config

__all__ = [
    'ClassWeightedCrossEntropyLoss', 'class_weighted_cross_entropy', 'ClsDistiller', 'SegDistiller',
    'build_frozen_teacher', 'load_teacher_weights', 'teacher_model_config'
]
