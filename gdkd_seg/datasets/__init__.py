"""Datasets for gdkd_seg.

Kept light on purpose: importing this package pulls in only numpy and OpenCV, not MMSeg or torch.
"""
from .toy_cityscapes import (CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, colorize_label, draw_scene, make_toy_cityscapes,
                             scene_generator)

__all__ = ['CITYSCAPES_CLASSES', 'CITYSCAPES_PALETTE', 'colorize_label', 'draw_scene', 'make_toy_cityscapes',
           'scene_generator']
