"""gdkd_seg: Generalized Decoupled Knowledge Distillation for MMSegmentation and mmpretrain.

Importing the package registers every module of the toolkit into the OpenMMLab registries, so configs can name
them by ``type=`` after ``custom_imports=dict(imports=['gdkd_seg'], allow_failed_imports=False)``.
"""
from . import checkpoint_loading, checkpoint_saving, compat

compat.silence_pkg_resources_warning()
compat.make_torchvision_importable()
checkpoint_loading.make_checkpoint_loading_safe()
checkpoint_saving.make_checkpoint_saving_atomic()

from . import hooks, losses, models  # noqa: E402,F401

__version__ = '0.1.0'
