"""One street scene, composed back to front from the layout, the frontage, the furniture, traffic and people."""
from typing import Callable, List, Tuple

import numpy as np

from .background import cast_building_shadows, draw_ground, draw_sky, draw_skyline
from .canvas import Canvas
from .finishing import draw_ego_hood, finish_image, roll_camera
from .frontage import draw_segment
from .layout import Occupancy, plan_frontage, plan_street
from .people import plan_pedestrians
from .street_furniture import plan_street_furniture
from .vehicles import plan_traffic


def _compose(canvas: Canvas) -> Tuple[np.ndarray, np.ndarray]:
    """Lay out the street, draw it back to front and finish the image; returns the uint8 image and the labels."""
    street = plan_street(canvas)
    segments = plan_frontage(canvas, street)
    draw_sky(canvas)
    draw_skyline(canvas)
    draw_ground(canvas, street)
    cast_building_shadows(canvas, segments, street)
    # Facades always lie beyond the street furniture and traffic that could overlap them in the image, so
    # drawing all frontage first and then everything else far-to-near resolves occlusion correctly.
    for segment in sorted(segments, key=lambda s: -s.z0):
        draw_segment(canvas, segment, street)
    objects: List[Tuple[float, Callable[[], None]]] = []
    occupancy = Occupancy()
    plan_street_furniture(canvas, street, objects)
    plan_traffic(canvas, street, occupancy, objects)
    plan_pedestrians(canvas, street, occupancy, objects)
    for _, draw in sorted(objects, key=lambda item: -item[0]):
        draw()
    if canvas.rng.random() < 0.6:
        draw_ego_hood(canvas)
    finish_image(canvas)
    if canvas.rng.random() < 0.3:
        roll_camera(canvas)
    image = np.clip(np.round(canvas.image), 0, 255).astype(np.uint8)
    return image, canvas.label


def draw_scene(rng: np.random.Generator, height: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
    """Draw one random street scene.

    Args:
        rng: Source of all randomness; the same generator state gives the same scene.
        height: Image height in pixels.
        width: Image width in pixels (scenes are composed for about twice the height, like Cityscapes).

    Returns:
        ``(image, label)``: the RGB image, uint8 of shape (height, width, 3), and the label map, uint8 of shape
        (height, width), holding Cityscapes train IDs 0..18 and 255 for void pixels.
    """
    if height < 8 or width < 8:
        raise ValueError(f'scene size must be at least 8x8 pixels, got {height}x{width}')
    return _compose(Canvas(rng, int(height), int(width)))
