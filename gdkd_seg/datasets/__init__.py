"""Datasets: the pre-flight checks of a config's dataset files (:mod:`.checks`) and the procedural toy city in the
Cityscapes layout (:mod:`.toy_cityscapes`)."""
from .toy_cityscapes import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, draw_scene, make_toy_cityscapes, scene_generator

__all__ = ['CITYSCAPES_CLASSES', 'CITYSCAPES_PALETTE', 'draw_scene', 'make_toy_cityscapes', 'scene_generator']
