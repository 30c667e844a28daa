"""A picture of the toy city: val scenes beside their label maps."""
from typing import Sequence

import cv2
import numpy as np

from ...utils.pictures import colorize
from .classes import CITYSCAPES_PALETTE
from .scene import draw_scene
from .writer import scene_generator, write_png


def write_preview(path: str, seed: int, size: Sequence[int], count: int = 6) -> None:
    """Write the first ``count`` val scenes of the dataset made with ``seed``, each beside its colourised label, as
    one PNG.

    Args:
        path: Output PNG path.
        seed: The dataset's base seed (the preview regenerates the same scenes).
        size: ``(height, width)`` of the scenes.
        count: Number of scenes stacked vertically.
    """
    rows = []
    for index in range(count):
        image, label = draw_scene(scene_generator(seed, 'val', index), *size)
        rows.append(np.concatenate([cv2.cvtColor(image, cv2.COLOR_RGB2BGR), colorize(label, CITYSCAPES_PALETTE)],
                                   axis=1))
    write_png(path, np.concatenate(rows, axis=0))
