"""The losses: the GDKD family and the baselines as pure functions (``*_loss``) and registered modules (``*Loss``),
the kernels that compute the GDKD family (:mod:`.kernels`), and a class-weighted cross-entropy for MMSeg heads."""
from .class_weighted_ce import ClassWeightedCrossEntropyLoss, class_weighted_cross_entropy
from .cwd import cwd_loss
from .dist import dist_loss
from .gdkd import AUTHORS_MASS_CLAMP, dkd_loss, gdkd3_loss, gdkd_loss, gdkd_pixel_terms, kd_loss
from .kernels import grouped_kd_loss
from .modules import CWDLoss, DISTLoss, DKDLoss, GDKD3Loss, GDKDLoss, KDLoss

__all__ = [
    'gdkd_loss', 'gdkd3_loss', 'dkd_loss', 'kd_loss', 'cwd_loss', 'dist_loss', 'grouped_kd_loss', 'gdkd_pixel_terms',
    'GDKDLoss', 'GDKD3Loss', 'DKDLoss', 'KDLoss', 'CWDLoss', 'DISTLoss', 'ClassWeightedCrossEntropyLoss',
    'class_weighted_cross_entropy', 'AUTHORS_MASS_CLAMP'
]
