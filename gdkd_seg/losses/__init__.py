"""Distillation losses: pure functions (``*_loss``) and registered modules (``*Loss``)."""
from .cwd import cwd_loss
from .dist import dist_loss
from .gdkd import dkd_loss, gdkd3_loss, gdkd_loss, gdkd_pixel_terms, grouped_kd_loss, kd_loss
from .modules import CWDLoss, DISTLoss, DKDLoss, GDKD3Loss, GDKDLoss, KDLoss

__all__ = [
    'gdkd_loss', 'gdkd3_loss', 'dkd_loss', 'kd_loss', 'cwd_loss', 'dist_loss', 'grouped_kd_loss', 'gdkd_pixel_terms',
    'GDKDLoss', 'GDKD3Loss', 'DKDLoss', 'KDLoss', 'CWDLoss', 'DISTLoss'
]
