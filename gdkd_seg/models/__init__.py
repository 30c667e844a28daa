"""Distiller models: ``SegDistiller`` (MMSeg) and the frozen-teacher helpers they share."""
from .cls_distiller import ClsDistiller
from .seg_distiller import SegDistiller
from .teacher import build_frozen_teacher, load_teacher_weights, teacher_model_config

__all__ = ['ClsDistiller', 'SegDistiller', 'build_frozen_teacher', 'load_teacher_weights', 'teacher_model_config']
