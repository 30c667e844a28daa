"""gdkd_seg: Generalized Decoupled Knowledge Distillation for MMSegmentation and mmpretrain.

Importing the package makes the changes to MMEngine listed in :mod:`gdkd_seg.engine.patches` (safe checkpoint
loading, crash-safe saving) and registers the toolkit's losses, distillers and hooks in the OpenMMLab registries, so
configs name them by ``type=`` after ``custom_imports=dict(imports=['gdkd_seg'], allow_failed_imports=False)``.

Where things live: :mod:`.losses` (the GDKD math and its kernels), :mod:`.models` (the distillers),
:mod:`.engine` (hooks, runner set-up, distributed runs, import-time patches, the tools' error handling),
:mod:`.checkpoint` (safe loading, allow-list, atomic saving, weight matching, export), :mod:`.datasets` (data
checks, the toy city), :mod:`.analysis` (teacher statistics, term maps, pictures), :mod:`.benchmark` (timing),
:mod:`.reproduce` (the harness and the demo's report), :mod:`.utils`.
"""
from .engine import patches

patches.apply()

from . import engine, losses, models  # noqa: E402, F401  (after apply(): mmpretrain imports torchvision)

__version__ = '0.1.0'
