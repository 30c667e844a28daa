"""The camera and the drawing primitives: world geometry in metres, projected into an image and a label map."""
from typing import Optional, Sequence

import cv2
import numpy as np

from .classes import IGNORE_INDEX
from .colours import Colour, clip_colour, rgb

# Polygons are drawn with 4 fractional bits, so distant objects keep sub-pixel positions instead of snapping.
SHIFT = 4
ONE = float(1 << SHIFT)


class Canvas:
    """One scene being drawn: a random camera, the RGB float image and train-ID label map it paints, the random
    generator every drawing step draws from, and the primitives that project world geometry into both maps.
    The drawing modules (background, frontage, street furniture, vehicles, people, finishing) take a Canvas.

    World coordinates are metres: x to the right, y up from the ground, z forward along the road. The camera
    looks straight down the road, so every line parallel to it converges to the vanishing point on the horizon.
    """

    def __init__(self, rng: np.random.Generator, height: int, width: int) -> None:
        self.rng = rng
        self.height = height
        self.width = width
        self.image = np.zeros((height, width, 3), np.float32)
        self.label = np.full((height, width), IGNORE_INDEX, np.uint8)
        self.focal = width * rng.uniform(0.75, 1.05)
        self.horizon_y = height * rng.uniform(0.36, 0.50)
        self.vanish_x = width * rng.uniform(0.40, 0.60)
        self.camera_height = rng.uniform(1.3, 1.7)
        # Depth of the ground at the bottom image row; nothing nearer is visible, and keeping drawn geometry no
        # nearer than this keeps projected coordinates bounded.
        self.z_bottom = self.focal * self.camera_height / (height - self.horizon_y)
        self.z_near = 0.8 * self.z_bottom
        self.z_far = 600.0
        self.sky_horizon_colour = np.full(3, 200.0)

    # --- projection and primitives ---------------------------------------------------------------------------

    def project(self, x, y, z) -> np.ndarray:
        """Pixel coordinates (..., 2) of world points; arguments (scalars or arrays) broadcast together."""
        z = np.asarray(z, np.float64)
        u = self.vanish_x + self.focal * np.asarray(x, np.float64) / z
        v = self.horizon_y + self.focal * (self.camera_height - np.asarray(y, np.float64)) / z
        points = np.empty(np.broadcast_shapes(u.shape, v.shape) + (2, ))
        points[..., 0] = u
        points[..., 1] = v
        return points

    def scale(self, z: float) -> float:
        """Pixels per metre at depth ``z``."""
        return self.focal / z

    def fill(self, points: np.ndarray, colour: Sequence[float], train_id: Optional[int]) -> None:
        """Fill a polygon given in pixels; ``train_id`` None paints the image only (details, shadows)."""
        fixed = np.round(np.asarray(points, np.float64).reshape(-1, 1, 2) * ONE).astype(np.int32)
        cv2.fillPoly(self.image, [fixed], rgb(colour), cv2.LINE_8, SHIFT)
        if train_id is not None:
            cv2.fillPoly(self.label, [fixed], int(train_id), cv2.LINE_8, SHIFT)

    def disc(self, centre: np.ndarray, radius: float, colour: Sequence[float], train_id: Optional[int]) -> None:
        centre_fixed = (int(round(centre[0] * ONE)), int(round(centre[1] * ONE)))
        radius_fixed = max(int(round(radius * ONE)), int(ONE) // 2)
        cv2.circle(self.image, centre_fixed, radius_fixed, rgb(colour), -1, cv2.LINE_8, SHIFT)
        if train_id is not None:
            cv2.circle(self.label, centre_fixed, radius_fixed, int(train_id), -1, cv2.LINE_8, SHIFT)

    def line(self, start: np.ndarray, end: np.ndarray, thickness_px: float, colour: Sequence[float],
             train_id: Optional[int]) -> None:
        thickness = max(1, int(round(thickness_px)))
        start_fixed = (int(round(start[0] * ONE)), int(round(start[1] * ONE)))
        end_fixed = (int(round(end[0] * ONE)), int(round(end[1] * ONE)))
        cv2.line(self.image, start_fixed, end_fixed, rgb(colour), thickness, cv2.LINE_8, SHIFT)
        if train_id is not None:
            cv2.line(self.label, start_fixed, end_fixed, int(train_id), thickness, cv2.LINE_8, SHIFT)

    def ground_quad(self, x0: float, x1: float, z0: float, z1: float, colour: Sequence[float],
                    train_id: Optional[int]) -> None:
        """A rectangle on the ground between lateral positions x0..x1 and depths z0..z1."""
        z0 = max(z0, self.z_near)
        if z1 <= z0:
            return
        self.fill(self.project([x0, x1, x1, x0], 0.0, [z0, z0, z1, z1]), colour, train_id)

    def facade_quad(self, x: float, z0: float, z1: float, y0: float, y1: float, colour: Sequence[float],
                    train_id: Optional[int]) -> None:
        """A vertical rectangle parallel to the road at lateral position ``x`` (a building front, a fence)."""
        z0 = max(z0, self.z_near)
        if z1 <= z0:
            return
        self.fill(self.project(x, [y0, y0, y1, y1], [z0, z1, z1, z0]), colour, train_id)

    def front_rect(self, x0: float, x1: float, y0: float, y1: float, z: float, colour: Sequence[float],
                   train_id: Optional[int]) -> None:
        """A vertical rectangle facing the camera at depth ``z`` (the back of a car, a sign)."""
        if z < self.z_near:
            return
        self.fill(self.project([x0, x1, x1, x0], [y0, y0, y1, y1], z), colour, train_id)

    def box(self, x0: float, x1: float, y0: float, y1: float, z0: float, z1: float, colour: Colour,
            train_id: Optional[int]) -> None:
        """The faces of an axis-aligned box the camera can see, shaded by which way they face."""
        if x0 > 0:  # the left side faces the camera
            self.facade_quad(x0, z0, z1, y0, y1, colour * 0.78, train_id)
        elif x1 < 0:
            self.facade_quad(x1, z0, z1, y0, y1, colour * 0.78, train_id)
        if y1 < self.camera_height:  # the top faces the camera
            z_near = max(z0, self.z_near)
            self.fill(self.project([x0, x1, x1, x0], y1, [z_near, z_near, z1, z1]), clip_colour(colour * 1.12),
                      train_id)
        self.front_rect(x0, x1, y0, y1, z0, colour, train_id)
