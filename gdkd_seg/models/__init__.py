"""Distiller models: ``SegDistiller`` (MMSeg) and the frozen-teacher helpers they share."""
from .seg_distiller import SegDistiller
from .teacher import build_frozen_teacher, load_teacher_weights, teacher_model_config

__all__ = ['SegDistiller', 'build_frozen_teacher', 'load_teacher_weights', 'teacher_model_config']
