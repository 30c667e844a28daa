"""Picture panels, in OpenCV's BGR: label maps in a dataset's palette, heat maps, where a prediction is wrong, and
titled panels side by side."""
from typing import List, Sequence, Tuple

import cv2
import numpy as np


def colorize(labels: np.ndarray, palette: Sequence[Sequence[int]]) -> np.ndarray:
    """A label map ``(H, W)`` painted in the dataset's RGB ``palette``, as BGR ``(H, W, 3)`` uint8; labels outside
    the palette (void, 255) black."""
    lookup = np.zeros((256, 3), np.uint8)
    lookup[:len(palette)] = np.asarray(palette, np.uint8)[:, ::-1]
    return lookup[np.clip(labels, 0, 255).astype(np.uint8)]


def heat_map(values: np.ndarray, top: float) -> np.ndarray:
    """``values`` ``(H, W)`` from 0 to ``top`` in matplotlib's viridis colours, as BGR."""
    scaled = np.clip(values / max(top, 1e-12), 0, 1)
    return cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)


def mistakes(image: np.ndarray, prediction: np.ndarray, labels: np.ndarray, ignore_index: int) -> np.ndarray:
    """The image darkened, red where ``prediction`` differs from ``labels`` and grey where they are ignored."""
    panel = (image * 0.4).astype(np.uint8)
    panel[(prediction != labels) & (labels != ignore_index)] = (0, 0, 255)
    panel[labels == ignore_index] = (128, 128, 128)
    return panel


def side_by_side(panels: List[Tuple[str, np.ndarray]]) -> np.ndarray:
    """Titled ``(title, BGR image)`` panels of one height, concatenated left to right (a title's lines split at
    newlines)."""
    tiles = []
    for title, panel in panels:
        panel = np.ascontiguousarray(panel).copy()
        for line, text in enumerate(title.split('\n')):
            cv2.putText(panel, text, (4, 14 + 14 * line), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                        cv2.LINE_AA)
        tiles.append(panel)
    return np.concatenate(tiles, axis=1)


def read_image(path: str, size: Tuple[int, int]) -> np.ndarray:
    """The BGR image at ``path`` resized to ``size`` ``(H, W)`` when it differs."""
    image = cv2.imread(path)
    if image is None:
        raise FileNotFoundError(f'cannot read the image {path}')
    if image.shape[:2] != tuple(size):
        image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return image
