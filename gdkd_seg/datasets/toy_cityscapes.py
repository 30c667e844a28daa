"""A procedural street-scene dataset written in the exact Cityscapes layout.

Real Cityscapes is 11 GB behind a login; the toy city lets the whole distillation pipeline (MMSeg's unmodified
``CityscapesDataset``, its transforms, training, evaluation) run end to end on a laptop CPU in minutes.

Each scene is a pinhole-camera view down a street: sky, a hazy skyline on the horizon, a road converging to the
vanishing point with lane markings and sidewalks beside it, building facades with windows, trees, grass, walls and
fences along the sides, poles carrying signs and traffic lights, and vehicles, pedestrians and cyclists that
occlude each other. Everything is placed in metres and projected, so object sizes follow perspective.

The scenes are made deliberately hard to solve from colour alone: road, sidewalk, building, wall and overcast sky
colours overlap; every object draws its own colour; and each image gets global colour, contrast and brightness
jitter, texture, cast shadows, blur and sensor noise. What separates the classes is texture (paving joints,
windows, foliage) and context (position relative to the horizon and the road), which a model with a larger
receptive field can use and a tiny one cannot.

This module must stay importable on its own (numpy and OpenCV only, no package-relative imports):
``tools/make_toy_cityscapes.py`` loads it by path to skip the package's heavy ``__init__``.

Defaults (chosen for a CPU demo): 128x256 images (Cityscapes' 1:2 aspect at 1/8 of its 1024x2048 size), 200 train
and 50 val images, about 18 MB on disk, generated in about 5 s on one CPU core.
"""
from __future__ import annotations

import math
import os
import shutil
import time
import warnings
import zlib
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

CITYSCAPES_CLASSES: Tuple[str, ...] = (
    'road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light', 'traffic sign', 'vegetation',
    'terrain', 'sky', 'person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle')
"""The 19 Cityscapes evaluation classes, indexed by train ID (the order MMSeg's ``CityscapesDataset`` uses)."""

CITYSCAPES_PALETTE: Tuple[Tuple[int, int, int], ...] = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
    (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60), (255, 0, 0),
    (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32))
"""The official Cityscapes colour (RGB) of each train ID, for visualising label maps."""

IGNORE_INDEX = 255
"""Label value of pixels that belong to no evaluated class (Cityscapes' void classes)."""

(ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN, VEGETATION, TERRAIN, SKY, PERSON, RIDER,
 CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE) = range(19)

DEFAULT_SIZE: Tuple[int, int] = (128, 256)
DEFAULT_NUM_TRAIN = 200
DEFAULT_NUM_VAL = 50
DEFAULT_CITIES: Dict[str, Tuple[str, ...]] = {'train': ('toyville', 'gridtown'), 'val': ('testburg',)}

# Cityscapes names each annotated image after the 20th frame (index 19) of a 30-frame snippet.
_ANNOTATED_FRAME = 19

# Polygons are drawn with 4 fractional bits, so distant objects keep sub-pixel positions instead of snapping.
_SHIFT = 4
_ONE = float(1 << _SHIFT)

Colour = np.ndarray  # float RGB triple in 0..255

# Texture strength per train ID (std of grey levels added by the fine, medium and coarse noise fields). Texture,
# not mean colour, is what tells e.g. road (fine grain, large blotches) from sidewalk or foliage.
_TEXTURE_AMPLITUDE = np.zeros((3, 256), np.float32)
_TEXTURE_AMPLITUDE[:] = np.array([3.0, 2.0, 3.0])[:, None]  # classes not listed below, and void
for _train_id, _amplitude in {
        ROAD: (6.0, 3.0, 9.0), SIDEWALK: (5.0, 5.0, 4.0), BUILDING: (3.0, 4.0, 9.0), WALL: (5.0, 7.0, 6.0),
        FENCE: (4.0, 3.0, 3.0), VEGETATION: (9.0, 22.0, 10.0), TERRAIN: (10.0, 10.0, 8.0), SKY: (1.0, 1.0, 3.0),
        CAR: (2.0, 1.0, 2.0), TRUCK: (2.0, 2.0, 3.0), BUS: (2.0, 2.0, 3.0), TRAIN: (2.0, 2.0, 3.0)}.items():
    _TEXTURE_AMPLITUDE[:, _train_id] = _amplitude

# Classes on the ground plane, which building shadows fall on.
_GROUND_CLASSES = np.zeros(256, bool)
_GROUND_CLASSES[[ROAD, SIDEWALK, TERRAIN]] = True


def _rgb(colour: Sequence[float]) -> Tuple[float, float, float]:
    """A colour as the plain float tuple OpenCV's drawing functions take."""
    return float(colour[0]), float(colour[1]), float(colour[2])


def _clip_colour(colour: np.ndarray) -> Colour:
    return np.clip(np.asarray(colour, np.float64), 0.0, 255.0)


def _jitter(rng: np.random.Generator, colour: Sequence[float], sigma: float) -> Colour:
    """``colour`` with independent Gaussian noise per channel."""
    return _clip_colour(np.asarray(colour, np.float64) + rng.normal(0.0, sigma, 3))


def _mix(colour_a: Sequence[float], colour_b: Sequence[float], weight_b: float) -> Colour:
    return _clip_colour(np.asarray(colour_a, np.float64) * (1.0 - weight_b) + np.asarray(colour_b) * weight_b)


def _grey(rng: np.random.Generator, low: float, high: float, tint: float) -> Colour:
    """A random grey between ``low`` and ``high`` with a slight random tint."""
    return _jitter(rng, np.full(3, rng.uniform(low, high)), tint)


# --- per-class colour samplers; their ranges overlap on purpose (see the module docstring) -----------------------

def _road_colour(rng: np.random.Generator) -> Colour:
    colour = _grey(rng, 62, 135, 4)
    colour[2] += rng.uniform(0, 8)  # asphalt is faintly bluish
    return _clip_colour(colour)


def _sidewalk_colour(rng: np.random.Generator) -> Colour:
    if rng.random() < 0.3:  # warm concrete pavers
        return _clip_colour(_grey(rng, 90, 160, 4) * np.array([1.1, 1.0, 0.9]))
    return _grey(rng, 80, 170, 5)


_BUILDING_BASES = np.array([(128, 128, 128), (196, 178, 150), (150, 88, 66), (220, 218, 210), (90, 100, 112)],
                           np.float64)


def _building_colour(rng: np.random.Generator) -> Colour:
    base = _BUILDING_BASES[rng.integers(len(_BUILDING_BASES))] * rng.uniform(0.65, 1.1)
    return _jitter(rng, base, 10)


def _wall_colour(rng: np.random.Generator) -> Colour:
    base = _BUILDING_BASES[rng.integers(3)] * rng.uniform(0.7, 1.1)
    return _jitter(rng, base, 10)


def _fence_colour(rng: np.random.Generator) -> Colour:
    if rng.random() < 0.5:  # wood
        return _jitter(rng, np.array([125, 95, 65]) * rng.uniform(0.6, 1.3), 10)
    return _grey(rng, 70, 180, 6)


def _pole_colour(rng: np.random.Generator) -> Colour:
    if rng.random() < 0.25:
        return _jitter(rng, (45, 65, 50), 8)  # painted dark green
    return _grey(rng, 50, 175, 5)


def _vegetation_colour(rng: np.random.Generator) -> Colour:
    if rng.random() < 0.15:  # autumn foliage
        return _jitter(rng, np.array([135, 115, 45]) * rng.uniform(0.7, 1.2), 12)
    return _jitter(rng, np.array([62, 100, 42]) * rng.uniform(0.55, 1.35), 12)


def _terrain_colour(rng: np.random.Generator) -> Colour:
    if rng.random() < 0.35:  # dry grass, gravel, earth
        return _jitter(rng, np.array([150, 135, 98]) * rng.uniform(0.7, 1.15), 10)
    return _jitter(rng, np.array([100, 132, 68]) * rng.uniform(0.7, 1.25), 10)


_VEHICLE_PAINTS = np.array([(235, 235, 235), (28, 28, 30), (160, 162, 166), (95, 97, 100), (150, 22, 26),
                            (28, 52, 120), (32, 62, 44), (190, 176, 142), (205, 170, 45)], np.float64)


def _vehicle_colour(rng: np.random.Generator) -> Colour:
    return _jitter(rng, _VEHICLE_PAINTS[rng.integers(len(_VEHICLE_PAINTS))] * rng.uniform(0.8, 1.1), 8)


def _clothes_colour(rng: np.random.Generator) -> Colour:
    return _clip_colour(rng.uniform(15, 225, 3) * rng.uniform(0.4, 1.0))


_SKIN_TONES = np.array([(255, 219, 172), (224, 172, 105), (198, 134, 66), (141, 85, 36), (95, 60, 35)], np.float64)


def _skin_colour(rng: np.random.Generator) -> Colour:
    return _jitter(rng, _SKIN_TONES[rng.integers(len(_SKIN_TONES))], 8)


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell_px: float) -> np.ndarray:
    """Unit-variance noise whose blobs are about ``cell_px`` pixels wide (bicubic upsampling of white noise)."""
    grid_h = max(2, int(round(height / cell_px)) + 1)
    grid_w = max(2, int(round(width / cell_px)) + 1)
    coarse = rng.standard_normal((grid_h, grid_w), dtype=np.float32)
    noise = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return noise / max(float(noise.std()), 1e-6)


@dataclass
class _Street:
    """Where the road, its lanes and sidewalks lie, in metres across the road (camera at x = 0, +x right)."""

    lane_width: float
    num_lanes: int
    road_left: float
    two_way: bool
    verge_width: Tuple[float, float]  # grass strip between kerb and sidewalk, (left, right)
    sidewalk_width: Tuple[float, float]
    cross_street: Optional[Tuple[float, float]]  # depth range of a side street crossing the view
    crosswalk: Optional[Tuple[float, float]]

    @property
    def road_right(self) -> float:
        return self.road_left + self.num_lanes * self.lane_width

    def kerb(self, side: int) -> float:
        """Lateral position of the road edge on ``side`` (-1 left, +1 right)."""
        return self.road_left if side < 0 else self.road_right

    def sidewalk_inner(self, side: int) -> float:
        return self.kerb(side) + side * self.verge_width[side > 0]

    def sidewalk_outer(self, side: int) -> float:
        return self.sidewalk_inner(side) + side * self.sidewalk_width[side > 0]

    def lane_centre(self, lane: int) -> float:
        return self.road_left + (lane + 0.5) * self.lane_width

    def in_cross_street(self, z0: float, z1: float) -> bool:
        return self.cross_street is not None and z1 > self.cross_street[0] and z0 < self.cross_street[1]


@dataclass
class _SideSegment:
    """A stretch of street frontage: one building, a tree line or an open lot, at depths ``z0``..``z1``."""

    side: int
    kind: str
    z0: float
    z1: float
    face_x: float  # lateral position of the facade (or hedge, fence, wall)
    height: float = 0.0


@dataclass
class _Occupancy:
    """Ground footprints already taken, so placed objects do not interpenetrate."""

    boxes: List[Tuple[float, float, float, float]] = field(default_factory=list)

    def try_take(self, x0: float, x1: float, z0: float, z1: float, margin: float = 0.3) -> bool:
        for bx0, bx1, bz0, bz1 in self.boxes:
            if x0 < bx1 + margin and bx0 < x1 + margin and z0 < bz1 + margin and bz0 < z1 + margin:
                return False
        self.boxes.append((x0, x1, z0, z1))
        return True


class _SceneRenderer:
    """Draws one street scene into an RGB float image and a train-ID label map.

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
        points = np.empty(np.broadcast_shapes(u.shape, v.shape) + (2,))
        points[..., 0] = u
        points[..., 1] = v
        return points

    def scale(self, z: float) -> float:
        """Pixels per metre at depth ``z``."""
        return self.focal / z

    def fill(self, points: np.ndarray, colour: Sequence[float], train_id: Optional[int]) -> None:
        """Fill a polygon given in pixels; ``train_id`` None paints the image only (details, shadows)."""
        fixed = np.round(np.asarray(points, np.float64).reshape(-1, 1, 2) * _ONE).astype(np.int32)
        cv2.fillPoly(self.image, [fixed], _rgb(colour), cv2.LINE_8, _SHIFT)
        if train_id is not None:
            cv2.fillPoly(self.label, [fixed], int(train_id), cv2.LINE_8, _SHIFT)

    def disc(self, centre: np.ndarray, radius: float, colour: Sequence[float], train_id: Optional[int]) -> None:
        centre_fixed = (int(round(centre[0] * _ONE)), int(round(centre[1] * _ONE)))
        radius_fixed = max(int(round(radius * _ONE)), int(_ONE) // 2)
        cv2.circle(self.image, centre_fixed, radius_fixed, _rgb(colour), -1, cv2.LINE_8, _SHIFT)
        if train_id is not None:
            cv2.circle(self.label, centre_fixed, radius_fixed, int(train_id), -1, cv2.LINE_8, _SHIFT)

    def line(self, start: np.ndarray, end: np.ndarray, thickness_px: float, colour: Sequence[float],
             train_id: Optional[int]) -> None:
        thickness = max(1, int(round(thickness_px)))
        start_fixed = (int(round(start[0] * _ONE)), int(round(start[1] * _ONE)))
        end_fixed = (int(round(end[0] * _ONE)), int(round(end[1] * _ONE)))
        cv2.line(self.image, start_fixed, end_fixed, _rgb(colour), thickness, cv2.LINE_8, _SHIFT)
        if train_id is not None:
            cv2.line(self.label, start_fixed, end_fixed, int(train_id), thickness, cv2.LINE_8, _SHIFT)

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
            self.fill(self.project([x0, x1, x1, x0], y1, [z_near, z_near, z1, z1]), _clip_colour(colour * 1.12),
                      train_id)
        self.front_rect(x0, x1, y0, y1, z0, colour, train_id)

    # --- the scene, back to front ----------------------------------------------------------------------------

    def render(self) -> Tuple[np.ndarray, np.ndarray]:
        street = self._plan_street()
        segments = self._plan_frontage(street)
        self._draw_sky()
        self._draw_skyline()
        self._draw_ground(street)
        self._cast_building_shadows(segments, street)
        # Facades always lie beyond the street furniture and traffic that could overlap them in the image, so
        # drawing all frontage first and then everything else far-to-near resolves occlusion correctly.
        for segment in sorted(segments, key=lambda s: -s.z0):
            self._draw_segment(segment, street)
        objects: List[Tuple[float, Callable[[], None]]] = []
        occupancy = _Occupancy()
        self._plan_street_furniture(street, objects)
        self._plan_traffic(street, occupancy, objects)
        self._plan_pedestrians(street, occupancy, objects)
        for _, draw in sorted(objects, key=lambda item: -item[0]):
            draw()
        if self.rng.random() < 0.6:
            self._draw_ego_hood()
        self._finish_image()
        if self.rng.random() < 0.3:
            self._roll_camera()
        image = np.clip(np.round(self.image), 0, 255).astype(np.uint8)
        return image, self.label

    # --- layout ----------------------------------------------------------------------------------------------

    def _plan_street(self) -> _Street:
        rng = self.rng
        lane_width = rng.uniform(2.8, 3.6)
        num_lanes = int(rng.choice([2, 2, 3, 4]))
        ego_lane = int(rng.integers(num_lanes))
        road_left = -(ego_lane + rng.uniform(0.3, 0.7)) * lane_width
        verge = tuple(rng.uniform(1.0, 3.0) if rng.random() < 0.25 else 0.0 for _ in range(2))
        sidewalk = tuple(rng.uniform(1.8, 4.5) for _ in range(2))
        cross_street = None
        if rng.random() < 0.3:
            start = rng.uniform(15, 50)
            cross_street = (start, start + rng.uniform(8, 15))
        crosswalk = None
        if rng.random() < 0.3:
            start = rng.uniform(max(7.0, self.z_bottom + 1), 28)
            crosswalk = (start, start + rng.uniform(3.0, 4.5))
        return _Street(lane_width, num_lanes, road_left, bool(rng.random() < 0.6), verge, sidewalk, cross_street,
                       crosswalk)

    def _plan_frontage(self, street: _Street) -> List[_SideSegment]:
        """Cut each side of the street into buildings, tree lines and open lots up to ~220 m away."""
        rng = self.rng
        segments = []
        for side in (-1, 1):
            z = self.z_near
            while z < 220:
                length = rng.uniform(6, 30) * (1.0 + z / 120)  # far frontage is seen compressed anyway
                z_end = z + length
                if street.in_cross_street(z, z_end):
                    # The side street leaves a gap: frontage stops at it and resumes beyond it.
                    if z < street.cross_street[0]:
                        z_end = street.cross_street[0]
                    else:
                        z = street.cross_street[1]
                        continue
                kind = rng.choice(['building', 'trees', 'open'], p=[0.6, 0.2, 0.2])
                setback = 0.0 if rng.random() < 0.6 else rng.uniform(0.5, 5.0)
                face_x = street.sidewalk_outer(side) + side * setback
                height = {'building': rng.uniform(6, 35) if rng.random() < 0.9 else rng.uniform(35, 60),
                          'trees': rng.uniform(4, 12), 'open': 0.0}[kind]
                segments.append(_SideSegment(side, str(kind), z, z_end, face_x, height))
                z = z_end
        return segments

    # --- background and ground -------------------------------------------------------------------------------

    def _draw_sky(self) -> None:
        rng = self.rng
        style = rng.random()
        if style < 0.5:  # clear
            top = _jitter(rng, (70, 120, 200), 15)
            bottom = _jitter(rng, (170, 200, 230), 12)
            cloudiness = rng.uniform(0.0, 0.8)
        elif style < 0.85:  # overcast: as grey as concrete
            level = rng.uniform(140, 230)
            top = _grey(rng, level - 25, level - 5, 4)
            bottom = _grey(rng, level, level + 15, 4)
            cloudiness = rng.uniform(0.1, 0.4)
        else:  # hazy evening
            top = _jitter(rng, (115, 125, 165), 15)
            bottom = _jitter(rng, (220, 188, 155), 15)
            cloudiness = rng.uniform(0.0, 0.5)
        self.sky_horizon_colour = bottom
        blend = np.clip(np.arange(self.height, dtype=np.float32) / self.horizon_y, 0, 1)[:, None, None]
        self.image[:] = top.astype(np.float32) * (1 - blend) + bottom.astype(np.float32) * blend
        # Clouds only matter above the horizon; everything below is painted over.
        sky_rows = min(self.height, int(self.horizon_y) + 2)
        clouds = np.clip(_smooth_noise(rng, sky_rows, self.width, self.width / 6) * 0.5
                         + rng.uniform(-0.7, 0.2), 0, 1) * np.float32(cloudiness)
        self.image[:sky_rows] += clouds[..., None] * (np.float32(235) - self.image[:sky_rows])
        self.label[:] = SKY

    def _draw_skyline(self) -> None:
        """Hazy distant blocks and tree tops that make the horizon as busy as a real city's."""
        rng = self.rng
        haze = self.sky_horizon_colour
        blocks = []
        for _ in range(int(rng.integers(8, 30))):
            depth = rng.uniform(130, 400)
            height = rng.uniform(6, 45) if rng.random() < 0.85 else rng.uniform(45, 110)
            blocks.append((depth, rng.uniform(-320, 320), rng.uniform(12, 45), height))
        for depth, x, block_width, height in sorted(blocks, reverse=True):
            colour = _mix(_building_colour(rng), haze, rng.uniform(0.3, 0.7))
            self.front_rect(x, x + block_width, 0, height, depth, colour, BUILDING)
        if rng.random() < 0.5:
            for _ in range(int(rng.integers(3, 12))):
                depth = rng.uniform(100, 300)
                centre = self.project(rng.uniform(-250, 250), rng.uniform(3, 8), depth)
                colour = _mix(_vegetation_colour(rng), haze, rng.uniform(0.2, 0.5))
                self.disc(centre, self.scale(depth) * rng.uniform(3, 8), colour, VEGETATION)

    def _draw_ground(self, street: _Street) -> None:
        rng = self.rng
        # Everything below the horizon starts as open land; road and sidewalks are laid over it.
        below_horizon = np.array([(-1, self.horizon_y), (self.width + 1, self.horizon_y),
                                  (self.width + 1, self.height + 1), (-1, self.height + 1)])
        self.fill(below_horizon, _terrain_colour(rng), TERRAIN)
        road_colour = _road_colour(rng)
        sidewalk_colour = _sidewalk_colour(rng)
        for side in (-1, 1):
            inner, outer = street.sidewalk_inner(side), street.sidewalk_outer(side)
            self.ground_quad(min(inner, outer), max(inner, outer), self.z_near, self.z_far,
                             _jitter(rng, sidewalk_colour, 4), SIDEWALK)
            if street.verge_width[side > 0] > 0:
                kerb = street.kerb(side)
                self.ground_quad(min(kerb, inner), max(kerb, inner), self.z_near, self.z_far, _terrain_colour(rng),
                                 TERRAIN)
            self._draw_paving_joints(street, side, sidewalk_colour)
        self.ground_quad(street.road_left, street.road_right, self.z_near, self.z_far, road_colour, ROAD)
        if street.cross_street is not None:
            self.ground_quad(-150, 150, street.cross_street[0], street.cross_street[1],
                             _jitter(rng, road_colour, 5), ROAD)
        for side in (-1, 1):  # kerb stones: a light edge line that belongs to the sidewalk
            kerb = street.kerb(side)
            self.ground_quad(min(kerb, kerb + side * 0.2), max(kerb, kerb + side * 0.2), self.z_near, 150,
                             _clip_colour(sidewalk_colour * rng.uniform(1.05, 1.3)), SIDEWALK)
        self._draw_road_details(street, road_colour)

    def _draw_paving_joints(self, street: _Street, side: int, sidewalk_colour: Colour) -> None:
        """Joint lines between paving slabs: the texture that tells a sidewalk from the road."""
        rng = self.rng
        inner, outer = street.sidewalk_inner(side), street.sidewalk_outer(side)
        joint_colour = _clip_colour(sidewalk_colour * rng.uniform(0.65, 0.85))
        spacing = rng.uniform(1.2, 3.0)
        z = self.z_near + rng.uniform(0, spacing)
        while z < 45 and self.scale(z) * spacing > 2.5:  # stop where joints would merge into a blur
            start, end = self.project([inner, outer], 0.0, z)
            self.line(start, end, 1, joint_colour, None)
            z += spacing
        if rng.random() < 0.6:  # a joint along the sidewalk too
            middle = (inner + outer) / 2
            start, end = self.project(middle, 0.0, [self.z_near, 60])
            self.line(start, end, 1, joint_colour, None)

    def _draw_road_details(self, street: _Street, road_colour: Colour) -> None:
        rng = self.rng
        paint = _grey(rng, 195, 240, 3)
        wear = rng.uniform(0.1, 0.6)  # faded markings drift towards the asphalt colour
        marking_colour = _mix(paint, road_colour, wear)
        for _ in range(int(rng.integers(0, 5))):  # patched asphalt
            x = rng.uniform(street.road_left, street.road_right - 1)
            z = rng.uniform(self.z_bottom, 60)
            self.ground_quad(x, x + rng.uniform(0.8, 3), z, z + rng.uniform(1, 6),
                             _clip_colour(road_colour * rng.uniform(0.8, 1.15)), ROAD)
        dash, period = rng.uniform(2, 4), rng.uniform(8, 13)
        for lane in range(1, street.num_lanes):
            x = street.road_left + lane * street.lane_width
            solid = street.two_way and lane == street.num_lanes // 2 and rng.random() < 0.5
            z = self.z_near - rng.uniform(0, period)
            while z < 150:
                z_end = 150 if solid else z + dash
                self.ground_quad(x - 0.07, x + 0.07, z, z_end, marking_colour, ROAD)
                z = z_end + (0 if solid else period - dash)
        if rng.random() < 0.5:  # edge lines
            for side in (-1, 1):
                x = street.kerb(side) - side * 0.35
                self.ground_quad(x - 0.06, x + 0.06, self.z_near, 150, marking_colour, ROAD)
        if street.crosswalk is not None:
            z0, z1 = street.crosswalk
            stripe = rng.uniform(0.4, 0.6)
            for x in np.arange(street.road_left + 0.3, street.road_right - stripe, 2 * stripe):
                self.ground_quad(x, x + stripe, z0, z1, marking_colour, ROAD)

    def _cast_building_shadows(self, segments: List[_SideSegment], street: _Street) -> None:
        """Darken the ground in the shadow of the buildings on the sun's far side (image only)."""
        rng = self.rng
        if rng.random() < 0.35:
            return  # overcast: no hard shadows
        sun_side = int(rng.choice([-1, 1]))
        reach = rng.uniform(0.2, 0.9)  # shadow length per metre of building height
        shadow_gain = np.ones((self.height, self.width), np.float32)
        for segment in segments:
            if segment.side != sun_side or segment.kind == 'open':
                continue
            x_end = segment.face_x - sun_side * segment.height * reach
            z0 = max(segment.z0, self.z_near)
            if segment.z1 <= z0:
                continue
            polygon = self.project([segment.face_x, x_end, x_end, segment.face_x], 0.0,
                                   [z0, z0, segment.z1, segment.z1])
            cv2.fillPoly(shadow_gain, [np.round(polygon * _ONE).astype(np.int32)], rng.uniform(0.45, 0.7),
                         cv2.LINE_8, _SHIFT)
        shadow_gain[~_GROUND_CLASSES[self.label]] = 1.0
        self.image *= shadow_gain[..., None]

    # --- frontage --------------------------------------------------------------------------------------------

    def _draw_segment(self, segment: _SideSegment, street: _Street) -> None:
        rng = self.rng
        side = segment.side
        outer = street.sidewalk_outer(side)
        if segment.face_x != outer:  # setback: a forecourt, paved or grassy
            colour, train_id = ((_sidewalk_colour(rng), SIDEWALK) if rng.random() < 0.5
                                else (_terrain_colour(rng), TERRAIN))
            self.ground_quad(min(outer, segment.face_x), max(outer, segment.face_x), segment.z0, segment.z1,
                             colour, train_id)
        if segment.kind == 'building':
            self._draw_building(segment)
        elif segment.kind == 'trees':
            self._draw_tree_line(segment)
        else:
            self._draw_open_lot(segment)

    def _draw_building(self, segment: _SideSegment) -> None:
        rng = self.rng
        side, x = segment.side, segment.face_x
        colour = _building_colour(rng)
        # The end wall facing the camera shows where a taller building rises behind a lower one.
        self.front_rect(min(x, x + side * 25), max(x, x + side * 25), 0, segment.height, segment.z0,
                        _clip_colour(colour * rng.uniform(0.75, 0.95)), BUILDING)
        self.facade_quad(x, segment.z0, segment.z1, 0, segment.height, colour, BUILDING)
        ground_floor = 0.0
        if rng.random() < 0.5:  # shop fronts
            ground_floor = rng.uniform(3, 4.2)
            self.facade_quad(x, segment.z0, segment.z1, 0, ground_floor,
                             _mix(colour, _grey(rng, 20, 90, 10), rng.uniform(0.4, 0.9)), BUILDING)
        self._draw_windows(segment, colour, max(ground_floor, rng.uniform(0.8, 1.5)))
        self.facade_quad(x, segment.z0, segment.z1, segment.height - 0.4, segment.height,
                         _clip_colour(colour * rng.uniform(0.7, 1.3)), BUILDING)  # cornice

    def _draw_windows(self, segment: _SideSegment, wall_colour: Colour, first_sill: float) -> None:
        """A grid of window panes on a facade, vectorised because a facade may hold a hundred of them."""
        rng = self.rng
        floor_height = rng.uniform(2.8, 3.6)
        column_step = rng.uniform(2.0, 4.0)
        pane_height = floor_height * rng.uniform(0.4, 0.65)
        pane_length = column_step * rng.uniform(0.35, 0.7)
        sills = np.arange(first_sill + 0.3, segment.height - pane_height - 0.6, floor_height)
        starts = np.arange(segment.z0 + 0.5, segment.z1 - pane_length - 0.3, column_step)
        starts = starts[starts > self.z_near]
        if len(sills) == 0 or len(starts) == 0:
            return
        y0, z0 = np.meshgrid(sills, starts, indexing='ij')
        y0, z0 = y0.ravel(), z0.ravel()
        y1, z1 = y0 + pane_height, z0 + pane_length
        corners = self.project(segment.face_x, np.stack([y0, y0, y1, y1], 1), np.stack([z0, z1, z1, z0], 1))
        extent = corners.max(axis=1) - corners.min(axis=1)
        visible = (extent[:, 0] > 0.7) & (extent[:, 1] > 0.7)
        glass = _mix(_grey(rng, 25, 110, 12), self.sky_horizon_colour, rng.uniform(0, 0.4))
        glass = _mix(glass, wall_colour, rng.uniform(0.0, 0.3))
        pane_colours = np.clip(glass + rng.normal(0, 10, (len(y0), 3)), 0, 255)
        lit = rng.random(len(y0)) < 0.05
        pane_colours[lit] = _jitter(rng, (230, 205, 140), 10)
        fixed = np.round(corners * _ONE).astype(np.int32)
        for pane in np.flatnonzero(visible):
            cv2.fillConvexPoly(self.image, fixed[pane], _rgb(pane_colours[pane]), cv2.LINE_8, _SHIFT)

    def _draw_tree_line(self, segment: _SideSegment) -> None:
        rng = self.rng
        side, x = segment.side, segment.face_x
        self.ground_quad(min(x, x + side * 15), max(x, x + side * 15), segment.z0, segment.z1, _terrain_colour(rng),
                         TERRAIN)
        trees = []
        z = segment.z0 + rng.uniform(0, 4)
        while z < segment.z1:
            trees.append((z, x + side * rng.uniform(0.5, 10)))
            z += rng.uniform(3, 8)
        for depth, tree_x in sorted(trees, reverse=True):
            self._draw_tree(tree_x, depth, segment.height * rng.uniform(0.7, 1.2))
        if rng.random() < 0.5:  # hedge along the sidewalk, in front of the trees
            self.facade_quad(x, segment.z0, segment.z1, 0, rng.uniform(0.8, 2.2), _vegetation_colour(rng),
                             VEGETATION)

    def _draw_tree(self, x: float, z: float, height: float) -> None:
        """A trunk and a crown of overlapping discs; Cityscapes labels trunks as vegetation too."""
        rng = self.rng
        if z < self.z_near:
            return
        trunk_top = height * rng.uniform(0.3, 0.5)
        self.front_rect(x - 0.15, x + 0.15, 0, trunk_top + 0.5, z, _jitter(rng, (85, 65, 45), 12), VEGETATION)
        foliage = _vegetation_colour(rng)
        crown_radius = (height - trunk_top) / 2
        for _ in range(int(rng.integers(3, 7))):
            centre = self.project(x + rng.normal(0, crown_radius * 0.4),
                                  trunk_top + crown_radius + rng.normal(0, crown_radius * 0.3), z)
            self.disc(centre, self.scale(z) * crown_radius * rng.uniform(0.5, 0.9),
                      _clip_colour(foliage * rng.uniform(0.75, 1.2)), VEGETATION)

    def _draw_open_lot(self, segment: _SideSegment) -> None:
        """Grass or gravel bounded by a fence, a wall or nothing, with perhaps a building set far back."""
        rng = self.rng
        side, x = segment.side, segment.face_x
        lot_depth = rng.uniform(6, 30)
        if rng.random() < 0.5:
            height = rng.uniform(6, 25)
            back = _SideSegment(side, 'building', segment.z0, segment.z1, x + side * lot_depth, height)
            self._draw_building(back)
        self.ground_quad(min(x, x + side * lot_depth), max(x, x + side * lot_depth), segment.z0, segment.z1,
                         _terrain_colour(rng), TERRAIN)
        boundary = rng.choice(['fence', 'wall', 'none'], p=[0.45, 0.35, 0.2])
        if boundary == 'wall':
            top = rng.uniform(0.8, 3.0)
            colour = _wall_colour(rng)
            self.front_rect(min(x, x + side * lot_depth), max(x, x + side * lot_depth), 0, top, segment.z0,
                            _clip_colour(colour * 0.85), WALL)
            self.facade_quad(x, segment.z0, segment.z1, 0, top, colour, WALL)
            self.facade_quad(x, segment.z0, segment.z1, top - 0.15, top, _clip_colour(colour * 1.2), WALL)
        elif boundary == 'fence':
            self._draw_fence(x, segment.z0, segment.z1, rng.uniform(0.9, 2.0))

    def _draw_fence(self, x: float, z0: float, z1: float, top: float) -> None:
        """Picket fence: separate slats where they resolve to pixels, a solid panel where they merge."""
        rng = self.rng
        colour = _fence_colour(rng)
        step = rng.uniform(0.12, 0.25)
        slat = step * rng.uniform(0.4, 0.7)
        z = max(z0, self.z_near)
        for rail in (0.25 * top, 0.8 * top):
            self.facade_quad(x, z0, z1, rail, rail + 0.1, _clip_colour(colour * 0.8), FENCE)
        while z < z1:
            if self.focal * abs(x) * step / (z * z) < 2.0:  # slats closer than 2 px: draw the rest solid
                self.facade_quad(x, z, z1, 0.05, top, _clip_colour(colour * 0.9), FENCE)
                break
            self.facade_quad(x, z, z + slat, 0.05, top, _jitter(rng, colour, 5), FENCE)
            z += step

    # --- street furniture --------------------------------------------------------------------------------------

    def _plan_street_furniture(self, street: _Street, objects: List[Tuple[float, Callable[[], None]]]) -> None:
        rng = self.rng
        for side in (-1, 1):
            x = street.kerb(side) + side * rng.uniform(0.3, 0.7)
            z = self.z_bottom + rng.uniform(0, 12)
            while z < 120:
                if not street.in_cross_street(z - 1, z + 1):
                    kind = rng.choice(['sign', 'traffic_light', 'street_light', 'plain'], p=[0.35, 0.25, 0.3, 0.1])
                    objects.append((z, self._bind(self._draw_pole, str(kind), x, z, side, street)))
                z += rng.uniform(10, 30)
            if rng.random() < 0.35:  # street trees on the sidewalk, in front of the buildings
                tree_x = street.sidewalk_inner(side) + side * rng.uniform(0.8, 1.5)
                z = self.z_bottom + rng.uniform(0, 8)
                while z < 100:
                    if not street.in_cross_street(z - 3, z + 3):
                        objects.append((z, self._bind(self._draw_tree, tree_x, z, rng.uniform(5, 10))))
                    z += rng.uniform(7, 14)
            for _ in range(int(rng.integers(0, 3))):  # bins and crates: void in Cityscapes
                inner, outer = street.sidewalk_inner(side), street.sidewalk_outer(side)
                bin_x = rng.uniform(min(inner, outer), max(inner, outer))
                bin_z = rng.uniform(self.z_bottom, 40)
                objects.append((bin_z, self._bind(self._draw_bin, bin_x, bin_z)))

    @staticmethod
    def _bind(function: Callable[..., None], *args) -> Callable[[], None]:
        return lambda: function(*args)

    def _draw_pole(self, kind: str, x: float, z: float, side: int, street: _Street) -> None:
        rng = self.rng
        colour = _pole_colour(rng)
        width = rng.uniform(0.1, 0.2)
        height = {'sign': rng.uniform(2.3, 3.4), 'traffic_light': rng.uniform(2.8, 4.5),
                  'street_light': rng.uniform(6, 9), 'plain': rng.uniform(1.0, 4.0)}[kind]
        self.front_rect(x - width / 2, x + width / 2, 0, height, z, colour, POLE)
        if kind == 'sign':
            self._draw_sign(x, height, z)
        elif kind == 'traffic_light':
            if rng.random() < 0.3:  # mast arm reaching over the road
                reach = min(rng.uniform(2, 6), street.num_lanes * street.lane_width - 0.5)
                arm_end = x - side * reach
                self.front_rect(min(x, arm_end), max(x, arm_end), height - 0.12, height, z, colour, POLE)
                self._draw_traffic_light(arm_end, height - 1.05, z)
            else:
                self._draw_traffic_light(x, height - 0.2, z)
        elif kind == 'street_light':
            # An arm over the road with the lamp head at its end (Cityscapes counts both as pole).
            reach, lamp_y = rng.uniform(1.0, 2.5), height + rng.uniform(0, 0.4)
            top, end = self.project(x, height, z), self.project(x - side * reach, lamp_y, z)
            self.line(top, end, max(1.0, width * 0.7 * self.scale(z)), colour, POLE)
            head_x0, head_x1 = sorted((x - side * reach, x - side * (reach - 0.6)))
            self.front_rect(head_x0, head_x1, lamp_y - 0.2, lamp_y, z, _grey(rng, 150, 230, 5), POLE)

    def _draw_sign(self, x: float, pole_top: float, z: float) -> None:
        rng = self.rng
        size = rng.uniform(0.5, 0.9)
        centre_y = pole_top + size / 2 - 0.1
        seen_from_behind = rng.random() < 0.3  # a plain grey back plate: only the shape and context remain
        face = _grey(rng, 90, 170, 4) if seen_from_behind else _jitter(
            rng, [(200, 30, 30), (30, 75, 180), (230, 200, 40), (230, 230, 230)][rng.integers(4)], 12)
        shape = rng.choice(['circle', 'triangle', 'square', 'board'])
        centre = self.project(x, centre_y, z)
        half = size / 2 * self.scale(z)
        if shape == 'circle':
            self.disc(centre, half, face, TRAFFIC_SIGN)
            if not seen_from_behind:
                self.disc(centre, half * 0.7, _grey(rng, 200, 245, 4), None)
        elif shape == 'triangle':
            points = centre + np.array([(-half, half * 0.8), (half, half * 0.8), (0, -half)])
            self.fill(points, face, TRAFFIC_SIGN)
        else:
            aspect = 1.0 if shape == 'square' else rng.uniform(1.5, 2.5)
            self.front_rect(x - size * aspect / 2, x + size * aspect / 2, centre_y - size / 2, centre_y + size / 2,
                            z, face, TRAFFIC_SIGN)

    def _draw_traffic_light(self, x: float, bottom: float, z: float) -> None:
        rng = self.rng
        housing = _jitter(rng, (30, 30, 32), 6) if rng.random() < 0.7 else _jitter(rng, (190, 165, 50), 12)
        width, height = 0.34, 1.0
        self.front_rect(x - width / 2, x + width / 2, bottom, bottom + height, z, housing, TRAFFIC_LIGHT)
        if rng.random() < 0.3:
            return  # seen from behind: an unlit box
        lit = int(rng.integers(3))
        for lamp, on_colour in enumerate([(255, 40, 30), (255, 190, 30), (60, 255, 120)]):
            lamp_colour = _jitter(rng, on_colour, 10) if lamp == lit else _grey(rng, 20, 60, 5)
            centre = self.project(x, bottom + height * (0.8 - 0.3 * lamp), z)
            self.disc(centre, 0.1 * self.scale(z), lamp_colour, None)

    def _draw_bin(self, x: float, z: float) -> None:
        colour = _jitter(self.rng, [(40, 90, 50), (60, 60, 60), (140, 140, 140), (20, 20, 20)][self.rng.integers(4)],
                         10)
        self.box(x - 0.3, x + 0.3, 0, self.rng.uniform(0.8, 1.2), z, z + 0.6, colour, IGNORE_INDEX)

    # --- traffic -----------------------------------------------------------------------------------------------

    def _plan_traffic(self, street: _Street, occupancy: _Occupancy,
                      objects: List[Tuple[float, Callable[[], None]]]) -> None:
        rng = self.rng
        z_min = max(self.z_bottom * 0.9, 3.0)

        def random_depth(far: float = 70.0) -> float:
            return z_min + (far - z_min) * rng.random() ** 1.5  # more traffic near the camera

        def lane_faces_camera(lane: int) -> bool:
            return street.two_way and lane < street.num_lanes // 2

        # Parked cars in rows along the kerb: they hide each other almost completely.
        for side in (-1, 1):
            if rng.random() < 0.5:
                x_centre = street.kerb(side) - side * 1.1
                z = random_depth(25)
                for _ in range(int(rng.integers(2, 7))):
                    length = rng.uniform(3.9, 4.8)
                    if not street.in_cross_street(z, z + length) and occupancy.try_take(
                            x_centre - 0.95, x_centre + 0.95, z, z + length, 0.1):
                        objects.append((z, self._bind(self._draw_car, x_centre, z, length, bool(rng.random() < 0.5))))
                    z += length + rng.uniform(0.3, 2.5)

        vehicles = ['car'] * int(rng.integers(1, 9))
        vehicles += ['truck'] * int(rng.random() < 0.35) + ['bus'] * int(rng.random() < 0.3)
        vehicles += ['motorcycle'] * int(rng.random() < 0.3) + ['bicycle'] * int(rng.random() < 0.35)
        if rng.random() < 0.15:
            vehicles.append('train')
        for vehicle in vehicles:
            for _ in range(10):  # a few tries to find free road
                lane = int(rng.integers(street.num_lanes))
                x_centre = street.lane_centre(lane) + rng.normal(0, 0.25)
                # Big vehicles further off, or they fill the whole frame.
                z = max(random_depth(), 7.0) if vehicle in ('truck', 'bus', 'train') else random_depth()
                facing = lane_faces_camera(lane)
                if vehicle == 'car':
                    length, half_width = rng.uniform(3.9, 4.9), 0.95
                    draw = self._bind(self._draw_car, x_centre, z, length, facing)
                elif vehicle == 'truck':
                    length, half_width = rng.uniform(7, 10), 1.25
                    draw = self._bind(self._draw_truck, x_centre, z, length, facing)
                elif vehicle == 'bus':
                    length, half_width = rng.uniform(11, 13), 1.28
                    draw = self._bind(self._draw_bus, x_centre, z, length, facing)
                elif vehicle == 'train':  # a tram running down the middle of the road
                    x_centre = (street.road_left + street.road_right) / 2
                    length, half_width = rng.uniform(20, 32), 1.33
                    draw = self._bind(self._draw_tram, x_centre, z, length, facing)
                else:  # two-wheelers keep to the right edge of their lane
                    x_centre = street.lane_centre(lane) + street.lane_width * 0.3
                    length, half_width = (2.0, 0.4) if vehicle == 'motorcycle' else (1.8, 0.3)
                    draw = self._bind(self._draw_two_wheeler, vehicle, x_centre, z)
                if occupancy.try_take(x_centre - half_width, x_centre + half_width, z, z + length):
                    objects.append((z, draw))
                    break

    def _draw_wheels_on_side(self, x_side: float, z0: float, z1: float, radius: float) -> None:
        """Dark tyres at both ends of a vehicle's visible side; drawn after the body, labelled with it.

        The side is seen at a slant, so each tyre is an ellipse narrowed by how fast depth shrinks across it.
        """
        if z0 < self.z_near:
            return
        tyre = _rgb(_grey(self.rng, 15, 40, 3))
        for z in (z0 + radius * 2.2, z1 - radius * 2.2):
            centre = self.project(x_side, radius, z)
            near_edge, far_edge = self.project(x_side, radius, [z - radius, z + radius])
            half_width = max(abs(near_edge[0] - far_edge[0]) / 2, 0.5)
            axes = (int(round(half_width * _ONE)), max(int(round(radius * self.scale(z) * _ONE)), int(_ONE) // 2))
            centre_fixed = (int(round(centre[0] * _ONE)), int(round(centre[1] * _ONE)))
            cv2.ellipse(self.image, centre_fixed, axes, 0, 0, 360, tyre, -1, cv2.LINE_8, _SHIFT)

    def _vehicle_shadow(self, x0: float, x1: float, z0: float, z1: float) -> None:
        """Dark contact shadow under a vehicle (image only: the ground keeps its label)."""
        self.ground_quad(x0 - 0.1, x1 + 0.1, z0 - 0.2, z1 + 0.1, _grey(self.rng, 10, 35, 3), None)

    def _draw_car(self, x_centre: float, z0: float, length: float, facing_camera: bool) -> None:
        rng = self.rng
        half_width = rng.uniform(0.82, 0.98)
        x0, x1, z1 = x_centre - half_width, x_centre + half_width, z0 + length
        body_top, roof = rng.uniform(0.8, 1.0), rng.uniform(1.35, 1.75)
        paint = _vehicle_colour(rng)
        glass = _grey(rng, 20, 70, 6)
        self._vehicle_shadow(x0, x1, z0, z1)
        self.box(x0, x1, 0.15, body_top, z0, z1, paint, CAR)
        cabin_z0, cabin_z1 = z0 + length * rng.uniform(0.18, 0.3), z1 - length * rng.uniform(0.15, 0.3)
        self.box(x0 + 0.08, x1 - 0.08, body_top, roof, cabin_z0, cabin_z1, paint, CAR)
        visible_side = x0 if x0 > 0 else (x1 if x1 < 0 else None)
        if visible_side is not None:
            self.facade_quad(visible_side, cabin_z0 + 0.15, cabin_z1 - 0.15, body_top + 0.08, roof - 0.08,
                             glass, None)
            self._draw_wheels_on_side(visible_side, z0, z1, 0.32)
        self.front_rect(x0 + 0.2, x1 - 0.2, body_top + 0.08, roof - 0.08, cabin_z0, glass, None)  # windscreen
        self.front_rect(x0 + 0.05, x0 + 0.3, 0.0, 0.2, z0, _grey(rng, 15, 35, 3), CAR)  # tyres under the bumper
        self.front_rect(x1 - 0.3, x1 - 0.05, 0.0, 0.2, z0, _grey(rng, 15, 35, 3), CAR)
        lamp = (_jitter(rng, (240, 235, 210), 8) if facing_camera else _jitter(rng, (200, 25, 25), 15))
        for lamp_x in (x0 + 0.08, x1 - 0.33):
            self.front_rect(lamp_x, lamp_x + 0.25, body_top - 0.25, body_top - 0.1, z0, lamp, None)
        # Licence plates are void in Cityscapes.
        self.front_rect(x_centre - 0.26, x_centre + 0.26, 0.35, 0.47, z0, _grey(rng, 200, 240, 4), IGNORE_INDEX)

    def _draw_truck(self, x_centre: float, z0: float, length: float, facing_camera: bool) -> None:
        rng = self.rng
        cab_length, cab_top, cargo_top = 2.2, rng.uniform(2.7, 3.1), rng.uniform(3.2, 3.9)
        x0, x1 = x_centre - 1.25, x_centre + 1.25
        cab_colour, cargo_colour = _vehicle_colour(rng), _vehicle_colour(rng)
        self._vehicle_shadow(x0, x1, z0, z0 + length)
        if facing_camera:  # cab first, cargo box behind it
            self.box(x0, x1, 0.6, cargo_top, z0 + cab_length + 0.3, z0 + length, cargo_colour, TRUCK)
            self.box(x0 + 0.05, x1 - 0.05, 0.4, cab_top, z0, z0 + cab_length, cab_colour, TRUCK)
            self.front_rect(x0 + 0.15, x1 - 0.15, cab_top - 1.1, cab_top - 0.2, z0, _grey(rng, 20, 70, 6), None)
        else:  # only the back of the cargo box, with doors
            self.box(x0 + 0.05, x1 - 0.05, 0.4, cab_top, z0 + length - cab_length, z0 + length, cab_colour, TRUCK)
            self.box(x0, x1, 0.6, cargo_top, z0, z0 + length - cab_length - 0.3, cargo_colour, TRUCK)
            self.front_rect(x_centre - 0.02, x_centre + 0.02, 0.7, cargo_top - 0.1, z0,
                            _clip_colour(cargo_colour * 0.6), None)
        visible_side = x0 if x0 > 0 else (x1 if x1 < 0 else None)
        if visible_side is not None:
            self._draw_wheels_on_side(visible_side, z0, z0 + length, 0.48)
        for wheel_x in (x0 + 0.1, x1 - 0.45):
            self.front_rect(wheel_x, wheel_x + 0.35, 0.0, 0.6, z0 + 0.5, _grey(rng, 15, 35, 3), TRUCK)

    def _draw_bus(self, x_centre: float, z0: float, length: float, facing_camera: bool) -> None:
        rng = self.rng
        x0, x1, z1, top = x_centre - 1.28, x_centre + 1.28, z0 + length, rng.uniform(3.0, 3.3)
        paint = _jitter(rng, [(200, 30, 30), (230, 190, 40), (235, 235, 235), (40, 90, 170)][rng.integers(4)], 15)
        glass = _grey(rng, 15, 60, 6)
        self._vehicle_shadow(x0, x1, z0, z1)
        self.box(x0, x1, 0.3, top, z0, z1, paint, BUS)
        visible_side = x0 if x0 > 0 else (x1 if x1 < 0 else None)
        if visible_side is not None:
            self.facade_quad(visible_side, z0 + 0.8, z1 - 0.8, 1.2, top - 0.4, glass, None)  # window band
            self._draw_wheels_on_side(visible_side, z0, z1, 0.5)
        window_bottom = 1.0 if facing_camera else 1.8
        self.front_rect(x0 + 0.15, x1 - 0.15, window_bottom, top - 0.35, z0, glass, None)
        self.front_rect(x0 + 0.3, x1 - 0.3, top - 0.3, top - 0.08, z0, _jitter(rng, (240, 160, 40), 10), None)

    def _draw_tram(self, x_centre: float, z0: float, length: float, facing_camera: bool) -> None:
        rng = self.rng
        x0, x1, z1, top = x_centre - 1.33, x_centre + 1.33, z0 + length, rng.uniform(3.3, 3.6)
        paint = _jitter(rng, [(230, 230, 230), (210, 40, 40), (235, 200, 40), (70, 150, 90)][rng.integers(4)], 12)
        glass = _grey(rng, 15, 60, 6)
        # Rails in the road surface; Cityscapes' rail track class is void.
        for rail_x in (x_centre - 0.72, x_centre + 0.72):
            self.ground_quad(rail_x - 0.04, rail_x + 0.04, self.z_near, 150, _grey(rng, 40, 140, 5), IGNORE_INDEX)
        self._vehicle_shadow(x0, x1, z0, z1)
        self.box(x0, x1, 0.35, top, z0, z1, paint, TRAIN)
        visible_side = x0 if x0 > 0 else (x1 if x1 < 0 else None)
        if visible_side is not None:
            for section_start in np.arange(z0 + 1.0, z1 - 2.0, 4.5):
                self.facade_quad(visible_side, section_start, section_start + 3.2, 1.3, top - 0.5, glass, None)
        self.front_rect(x0 + 0.2, x1 - 0.2, 1.2, top - 0.4, z0, glass, None)
        # Pantograph: a thin frame on the roof reaching for the overhead wire.
        base, tip = self.project(x_centre, top, z0 + length / 2), self.project(x_centre, top + 1.2, z0 + length / 2)
        self.line(base, tip, 1, _grey(rng, 30, 90, 4), TRAIN)

    def _draw_two_wheeler(self, kind: str, x: float, z: float) -> None:
        """A motorcycle or bicycle seen from behind (or ahead) with its rider."""
        rng = self.rng
        if z < self.z_near:
            return
        if kind == 'motorcycle':
            train_id, wheel_width, colour = MOTORCYCLE, 0.16, _vehicle_colour(rng)
            self.front_rect(x - wheel_width / 2, x + wheel_width / 2, 0, 0.62, z, _grey(rng, 15, 35, 3), train_id)
            self.front_rect(x - 0.32, x + 0.32, 0.4, 0.95, z, colour, train_id)
            self.front_rect(x - 0.4, x + 0.4, 1.05, 1.12, z, _grey(rng, 20, 60, 4), train_id)  # handlebar
            self.front_rect(x - 0.08, x + 0.08, 0.75, 0.85, z - 0.01, _jitter(rng, (210, 30, 30), 10), None)
            rider_base, helmet = 0.5, True
        else:
            train_id = BICYCLE
            self.front_rect(x - 0.03, x + 0.03, 0, 0.68, z, _grey(rng, 10, 60, 4), train_id)
            handlebar = self.project([x - 0.28, x + 0.28], 1.0, z)
            self.line(handlebar[0], handlebar[1], 1, _grey(rng, 20, 120, 5), train_id)
            rider_base, helmet = 0.35, rng.random() < 0.4
        self._draw_person(x, z, rng.uniform(1.25, 1.4), RIDER, base_y=rider_base, helmet=helmet,
                          legs_apart=kind == 'motorcycle')

    # --- people ------------------------------------------------------------------------------------------------

    def _plan_pedestrians(self, street: _Street, occupancy: _Occupancy,
                          objects: List[Tuple[float, Callable[[], None]]]) -> None:
        rng = self.rng
        z_min = max(self.z_bottom * 0.9, 3.0)
        for _ in range(int(rng.poisson(3.0))):
            side = int(rng.choice([-1, 1]))
            inner, outer = street.sidewalk_inner(side), street.sidewalk_outer(side)
            x = rng.uniform(min(inner, outer) + 0.3, max(inner, outer) - 0.3)
            z = rng.uniform(z_min, 55)
            for member in range(int(rng.choice([1, 1, 1, 2, 3]))):  # people walk in small groups
                member_x, member_z = x + member * rng.uniform(0.4, 0.7), z + rng.normal(0, 0.4)
                if member_z > z_min and occupancy.try_take(member_x - 0.25, member_x + 0.25, member_z,
                                                           member_z + 0.3, 0.05):
                    objects.append((member_z, self._bind(self._draw_person, member_x, member_z,
                                                         rng.uniform(1.55, 1.95), PERSON)))
        if rng.random() < 0.25:  # parked bicycles on the sidewalk, seen side-on
            side = int(rng.choice([-1, 1]))
            x = street.sidewalk_outer(side) - side * 0.8
            z = rng.uniform(z_min, 30)
            for _ in range(int(rng.integers(1, 4))):
                objects.append((z, self._bind(self._draw_bicycle_side_on, x, z)))
                z += rng.uniform(0.5, 0.9)
        if street.crosswalk is not None:
            for _ in range(int(rng.integers(0, 5))):
                x = rng.uniform(street.road_left, street.road_right)
                z = rng.uniform(*street.crosswalk)
                if occupancy.try_take(x - 0.25, x + 0.25, z, z + 0.3, 0.05):
                    objects.append((z, self._bind(self._draw_person, x, z, rng.uniform(1.55, 1.95), PERSON)))

    def _draw_person(self, x: float, z: float, height: float, train_id: int, base_y: float = 0.0,
                     helmet: bool = False, legs_apart: bool = False) -> None:
        """A pedestrian (or a rider on a seat at ``base_y``): legs, torso, arms and head, a few pixels wide."""
        rng = self.rng
        if z < self.z_near:
            return
        px = self.scale(z) * height  # the person's height in pixels
        foot_u, foot_v = self.project(x, base_y, z)
        trousers, top = _clothes_colour(rng), _clothes_colour(rng)
        stride = px * (0.12 if legs_apart else rng.uniform(0.0, 0.09))
        hip_v, shoulder_v = foot_v - 0.47 * px, foot_v - 0.82 * px
        for direction in (-1, 1):
            leg_top = foot_u + direction * 0.045 * px
            leg_bottom = leg_top + direction * stride
            self.fill(np.array([(leg_top - 0.035 * px, hip_v), (leg_top + 0.035 * px, hip_v),
                                (leg_bottom + 0.03 * px, foot_v), (leg_bottom - 0.03 * px, foot_v)]),
                      trousers, train_id)
        self.fill(np.array([(foot_u - 0.12 * px, shoulder_v), (foot_u + 0.12 * px, shoulder_v),
                            (foot_u + 0.09 * px, hip_v + 0.03 * px), (foot_u - 0.09 * px, hip_v + 0.03 * px)]),
                  top, train_id)
        arm_swing = rng.uniform(-0.06, 0.06) * px
        for direction in (-1, 1):
            shoulder = np.array([foot_u + direction * 0.11 * px, shoulder_v + 0.02 * px])
            hand = np.array([foot_u + direction * 0.14 * px + arm_swing * direction, hip_v + 0.05 * px])
            self.line(shoulder, hand, 0.045 * px, top, train_id)
        head_centre = np.array([foot_u, foot_v - 0.91 * px])
        self.disc(head_centre, 0.065 * px, _skin_colour(rng), train_id)
        hair = _vehicle_colour(rng) if helmet else _jitter(rng, (40, 30, 20), 20)
        self.disc(head_centre - np.array([0, 0.02 * px]), (0.08 if helmet else 0.06) * px, hair, train_id)
        if rng.random() < 0.25:  # a bag
            bag_u = foot_u + rng.choice([-1, 1]) * 0.15 * px
            self.fill(np.array([(bag_u - 0.05 * px, hip_v - 0.05 * px), (bag_u + 0.05 * px, hip_v - 0.05 * px),
                                (bag_u + 0.05 * px, hip_v + 0.08 * px), (bag_u - 0.05 * px, hip_v + 0.08 * px)]),
                      _clothes_colour(rng), train_id)

    def _draw_bicycle_side_on(self, x: float, z: float) -> None:
        """Two thin wheel rings and a frame: among the thinnest objects in the scene."""
        rng = self.rng
        if z < self.z_near:
            return
        colour = _clip_colour(rng.uniform(10, 220, 3))
        scale = self.scale(z)
        thickness = max(1.0, 0.05 * scale)
        rear, front = self.project(x - 0.55, 0.34, z), self.project(x + 0.55, 0.34, z)
        for hub in (rear, front):
            centre = (int(round(hub[0] * _ONE)), int(round(hub[1] * _ONE)))
            radius = max(int(round(0.34 * scale * _ONE)), int(_ONE))
            cv2.circle(self.image, centre, radius, _rgb(_grey(rng, 15, 40, 3)), int(round(thickness)), cv2.LINE_8,
                       _SHIFT)
            cv2.circle(self.label, centre, radius, BICYCLE, int(round(thickness)), cv2.LINE_8, _SHIFT)
        seat, crank, head = (self.project(x - 0.2, 0.9, z), self.project(x, 0.3, z), self.project(x + 0.4, 0.95, z))
        for start, end in ((rear, seat), (seat, crank), (crank, rear), (seat, head), (head, front), (crank, head)):
            self.line(start, end, thickness, colour, BICYCLE)

    # --- finishing ---------------------------------------------------------------------------------------------

    def _draw_ego_hood(self) -> None:
        """The bonnet of the recording car along the bottom edge: void, as in Cityscapes."""
        rng = self.rng
        hood_height = self.height * rng.uniform(0.05, 0.13)
        centre_x = self.width * rng.uniform(0.4, 0.6)
        xs = np.linspace(-0.05 * self.width, 1.05 * self.width, 24)
        ys = self.height - hood_height * (1 - 0.6 * ((xs - centre_x) / (0.6 * self.width)) ** 2)
        outline = np.concatenate([np.stack([xs, ys], 1), [(1.05 * self.width, self.height + 1),
                                                          (-0.05 * self.width, self.height + 1)]])
        self.fill(outline, _vehicle_colour(rng) * 0.6, IGNORE_INDEX)
        highlight = np.stack([xs, ys + hood_height * 0.3], 1)
        cv2.polylines(self.image, [np.round(highlight * _ONE).astype(np.int32)], False,
                      _rgb(_grey(rng, 120, 200, 8)), 1, cv2.LINE_8, _SHIFT)

    def _finish_image(self) -> None:
        """Texture, uneven light, global colour jitter, optics blur and sensor noise: image only, labels stay."""
        rng = self.rng
        height, width = self.height, self.width
        fine = (rng.random((height, width), dtype=np.float32) - np.float32(0.5)) * np.float32(math.sqrt(12))
        medium = _smooth_noise(rng, height, width, max(2.0, width / 100))
        coarse = _smooth_noise(rng, height, width, width / 12)
        texture = (_TEXTURE_AMPLITUDE[0][self.label] * fine + _TEXTURE_AMPLITUDE[1][self.label] * medium
                   + _TEXTURE_AMPLITUDE[2][self.label] * coarse)
        # Vignetting and a light gradient across the frame.
        xs = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
        ys = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
        light = (1 - np.float32(rng.uniform(0, 0.125)) * (xs * xs + ys * ys)
                 + np.float32(rng.uniform(-0.075, 0.075)) * xs)
        self.image *= light[..., None]
        self.image += texture[..., None]
        foliage = self.label == VEGETATION  # foliage varies in hue, not only in brightness
        self.image[..., 1] += np.where(foliage, np.float32(8) * medium, np.float32(0))
        # Camera contrast, white balance, exposure and saturation compose into one affine colour transform.
        mean = np.array(cv2.mean(self.image)[:3])
        contrast = rng.uniform(0.7, 1.3)
        gains = rng.uniform(0.82, 1.18, 3) * rng.uniform(0.75, 1.2)
        offset = rng.uniform(-20, 20)
        saturation = rng.uniform(0.5, 1.3)
        to_grey = np.full((3, 3), 1 / 3)
        desaturate = saturation * np.eye(3) + (1 - saturation) * to_grey
        matrix = desaturate @ np.diag(gains * contrast)
        bias = desaturate @ (gains * (1 - contrast) * mean + offset)
        self.image = cv2.transform(self.image, np.hstack([matrix, bias[:, None]]).astype(np.float32))
        sigma = rng.uniform(0.0, 1.1)
        if sigma > 0.3:
            self.image = cv2.GaussianBlur(self.image, (0, 0), sigma)
        # Sensor noise; uniform rather than Gaussian because it is three times cheaper to draw and looks the same.
        noise_std = rng.uniform(2, 9)
        self.image += (rng.random(self.image.shape, dtype=np.float32) - np.float32(0.5)) * np.float32(
            noise_std * math.sqrt(12))

    def _roll_camera(self) -> None:
        """Rotate the frame a little; pixels rotated in from outside are black and void."""
        angle = self.rng.uniform(-3, 3)
        matrix = cv2.getRotationMatrix2D((self.width / 2, self.height / 2), angle, 1.0)
        size = (self.width, self.height)
        self.image = cv2.warpAffine(self.image, matrix, size, flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        self.label = cv2.warpAffine(self.label, matrix, size, flags=cv2.INTER_NEAREST,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=IGNORE_INDEX)


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
    return _SceneRenderer(rng, int(height), int(width)).render()


def colorize_label(label: np.ndarray) -> np.ndarray:
    """Paint a train-ID label map with the Cityscapes palette (void black).

    Args:
        label: uint8 label map (H, W) of train IDs and 255.

    Returns:
        RGB uint8 image (H, W, 3).
    """
    lookup = np.zeros((256, 3), np.uint8)
    lookup[:len(CITYSCAPES_PALETTE)] = CITYSCAPES_PALETTE
    return lookup[label]


def scene_generator(seed: int, split: str, index: int) -> np.random.Generator:
    """The random generator that draws image ``index`` of ``split`` in the dataset made with ``seed``.

    It depends on (seed, split, index) only, so any subset of images, in any order, regenerates identically.

    Args:
        seed: Non-negative base seed of the dataset.
        split: Split name, e.g. ``'train'``; it enters through a stable CRC32 (``hash`` is salted per process).
        index: Index of the image within its split.

    Returns:
        A fresh ``numpy.random.Generator``; pass it to :func:`draw_scene`.
    """
    return np.random.default_rng([seed, zlib.crc32(split.encode('utf-8')), index])


def _progress_bar(total: int, enabled: bool):
    """MMEngine's progress bar, or a no-op stand-in (tqdm is not a dependency)."""
    if enabled and total > 0:
        try:
            from mmengine.utils import ProgressBar
            return ProgressBar(total)
        except ImportError:
            pass

    class _Silent:
        def update(self, num_tasks: int = 1) -> None:
            pass

    return _Silent()


def make_toy_cityscapes(out_dir: str,
                        num_train: int = DEFAULT_NUM_TRAIN,
                        num_val: int = DEFAULT_NUM_VAL,
                        size: Tuple[int, int] = DEFAULT_SIZE,
                        seed: int = 0,
                        progress: bool = True,
                        cities: Optional[Dict[str, Sequence[str]]] = None,
                        overwrite: bool = False) -> dict:
    """Generate a toy street-scene dataset in the exact layout MMSeg's ``CityscapesDataset`` reads.

    Writes ``leftImg8bit/<split>/<city>/<city>_<seq:06d>_000019_leftImg8bit.png`` (RGB images) and
    ``gtFine/<split>/<city>/<city>_<seq:06d>_000019_gtFine_labelTrainIds.png`` (single-channel uint8 train IDs,
    255 void) under ``out_dir``, where ``seq`` is the image's index within its split. Each split's images are
    divided among its cities in consecutive blocks. Every image is drawn from a generator seeded by
    ``(seed, split, index)``, so the same arguments write byte-identical files. Split folders that already hold
    files are refused, since the dataset would read the old files beside the new ones, unless ``overwrite`` is set:
    then those split folders are deleted first. Other folders under ``out_dir`` are left alone.

    Args:
        out_dir: Dataset root, e.g. ``data/toy_cityscapes``; created if missing.
        num_train: Number of training images (default 200).
        num_val: Number of validation images (default 50).
        size: ``(height, width)`` of every image (default (128, 256)).
        seed: Non-negative base seed.
        progress: Show a progress bar on stdout.
        cities: City names per split; default ``{'train': ('toyville', 'gridtown'), 'val': ('testburg',)}``.
        overwrite: Replace the train and val splits when ``out_dir`` already holds files there.

    Returns:
        A summary: ``out_dir``, ``size``, ``seed``, ``num_images`` per split, ``class_pixels`` (pixel count per
        class name, over all splits), ``class_images`` (number of images containing each class),
        ``ignore_pixels``, ``classes_present`` (names of classes with any pixels), ``removed_files`` (files of the
        replaced splits) and ``seconds``.

    Raises:
        FileExistsError: when a split folder already holds files and ``overwrite`` is not set.
    """
    height, width = (int(v) for v in size)
    if num_train < 0 or num_val < 0:
        raise ValueError(f'image counts must be non-negative, got num_train={num_train}, num_val={num_val}')
    if seed < 0:
        raise ValueError(f'seed must be non-negative, got {seed}')
    cities = dict(DEFAULT_CITIES if cities is None else cities)
    counts = {'train': int(num_train), 'val': int(num_val)}
    removed_files = _clear_splits(out_dir, counts, overwrite)
    pixel_counts = np.zeros(256, np.int64)
    image_counts = np.zeros(256, np.int64)
    started = time.perf_counter()
    bar = _progress_bar(sum(counts.values()), progress)
    for split, count in counts.items():
        split_cities = list(cities[split])
        if count and not split_cities:
            raise ValueError(f'no city names given for split {split!r}')
        for index in range(count):
            city = split_cities[index * len(split_cities) // count]
            stem = f'{city}_{index:06d}_{_ANNOTATED_FRAME:06d}'
            image, label = draw_scene(scene_generator(seed, split, index), height, width)
            image_dir = os.path.join(out_dir, 'leftImg8bit', split, city)
            label_dir = os.path.join(out_dir, 'gtFine', split, city)
            os.makedirs(image_dir, exist_ok=True)
            os.makedirs(label_dir, exist_ok=True)
            # OpenCV writes BGR; converting keeps the file's colours the scene's colours.
            _write_png(os.path.join(image_dir, f'{stem}_leftImg8bit.png'), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            _write_png(os.path.join(label_dir, f'{stem}_gtFine_labelTrainIds.png'), label)
            histogram = np.bincount(label.ravel(), minlength=256)
            pixel_counts += histogram
            image_counts += histogram > 0
            bar.update()
    if progress and sum(counts.values()):
        print()  # MMEngine's bar leaves the cursor at the end of its line
    present = [name for train_id, name in enumerate(CITYSCAPES_CLASSES) if pixel_counts[train_id] > 0]
    if len(present) < 10 and sum(counts.values()) >= 20:
        warnings.warn(f'only {len(present)} classes appear in the generated set: {present}')
    return {
        'out_dir': os.path.abspath(out_dir),
        'size': (height, width),
        'seed': seed,
        'num_images': counts,
        'class_pixels': {name: int(pixel_counts[i]) for i, name in enumerate(CITYSCAPES_CLASSES)},
        'class_images': {name: int(image_counts[i]) for i, name in enumerate(CITYSCAPES_CLASSES)},
        'ignore_pixels': int(pixel_counts[IGNORE_INDEX]),
        'classes_present': present,
        'removed_files': removed_files,
        'seconds': round(time.perf_counter() - started, 2),
    }


def _clear_splits(out_dir: str, splits: Iterable[str], overwrite: bool) -> int:
    """Refuse (or with ``overwrite`` delete) the ``leftImg8bit/<split>`` and ``gtFine/<split>`` folders of ``splits``
    that already hold files; returns the number of files deleted."""
    folders = [os.path.join(out_dir, kind, split) for kind in ('leftImg8bit', 'gtFine') for split in splits]
    held = {folder: sum(len(files) for _, _, files in os.walk(folder)) for folder in folders}
    held = {folder: count for folder, count in held.items() if count}
    if held and not overwrite:
        listed = ', '.join(f'{folder} ({count} files)' for folder, count in held.items())
        raise FileExistsError(f'{out_dir} already holds a dataset: {listed}. The new images would be read beside '
                              'the old ones; choose another output folder, or replace these splits with '
                              '--overwrite (overwrite=True)')
    for folder in held:
        shutil.rmtree(folder)
    return sum(held.values())


def _write_png(path: str, array: np.ndarray) -> None:
    """``cv2.imwrite`` that fails loudly instead of returning False."""
    if not cv2.imwrite(path, array):
        raise OSError(f'could not write {path}')
