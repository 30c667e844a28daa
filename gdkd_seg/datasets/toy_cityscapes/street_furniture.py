"""Street furniture: poles with signs, traffic lights and lamps, street trees and bins."""
from functools import partial
from typing import Callable, List, Tuple

import numpy as np

from .canvas import Canvas
from .classes import IGNORE_INDEX, POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN
from .colours import grey, jitter, pole_colour
from .frontage import draw_tree
from .layout import Street


def plan_street_furniture(canvas: Canvas, street: Street, objects: List[Tuple[float, Callable[[], None]]]) -> None:
    rng = canvas.rng
    for side in (-1, 1):
        x = street.kerb(side) + side * rng.uniform(0.3, 0.7)
        z = canvas.z_bottom + rng.uniform(0, 12)
        while z < 120:
            if not street.in_cross_street(z - 1, z + 1):
                kind = rng.choice(['sign', 'traffic_light', 'street_light', 'plain'], p=[0.4, 0.35, 0.2, 0.05])
                objects.append((z, partial(draw_pole, canvas, str(kind), x, z, side, street)))
            z += rng.uniform(6, 16)
        if rng.random() < 0.35:  # street trees on the sidewalk, in front of the buildings
            tree_x = street.sidewalk_inner(side) + side * rng.uniform(0.8, 1.5)
            z = canvas.z_bottom + rng.uniform(0, 8)
            while z < 100:
                if not street.in_cross_street(z - 3, z + 3):
                    objects.append((z, partial(draw_tree, canvas, tree_x, z, rng.uniform(5, 10))))
                z += rng.uniform(7, 14)
        for _ in range(int(rng.integers(0, 3))):  # bins and crates: void in Cityscapes
            inner, outer = street.sidewalk_inner(side), street.sidewalk_outer(side)
            bin_x = rng.uniform(min(inner, outer), max(inner, outer))
            bin_z = rng.uniform(canvas.z_bottom, 40)
            objects.append((bin_z, partial(draw_bin, canvas, bin_x, bin_z)))


def draw_pole(canvas: Canvas, kind: str, x: float, z: float, side: int, street: Street) -> None:
    rng = canvas.rng
    colour = pole_colour(rng)
    width = rng.uniform(0.2, 0.35)
    height = {
        'sign': rng.uniform(2.3, 3.4),
        'traffic_light': rng.uniform(2.8, 4.5),
        'street_light': rng.uniform(6, 9),
        'plain': rng.uniform(1.0, 4.0)
    }[kind]
    canvas.front_rect(x - width / 2, x + width / 2, 0, height, z, colour, POLE)
    if kind == 'sign':
        _draw_sign(canvas, x, height, z)
    elif kind == 'traffic_light':
        if rng.random() < 0.3:  # mast arm reaching over the road
            reach = min(rng.uniform(2, 6), street.num_lanes * street.lane_width - 0.5)
            arm_end = x - side * reach
            canvas.front_rect(min(x, arm_end), max(x, arm_end), height - 0.12, height, z, colour, POLE)
            _draw_traffic_light(canvas, arm_end, height - 1.05, z)
        else:
            _draw_traffic_light(canvas, x, height - 0.2, z)
    elif kind == 'street_light':
        # An arm over the road with the lamp head at its end (Cityscapes counts both as pole).
        reach, lamp_y = rng.uniform(1.0, 2.5), height + rng.uniform(0, 0.4)
        top, end = canvas.project(x, height, z), canvas.project(x - side * reach, lamp_y, z)
        canvas.line(top, end, max(1.0, width * 0.7 * canvas.scale(z)), colour, POLE)
        head_x0, head_x1 = sorted((x - side * reach, x - side * (reach - 0.6)))
        canvas.front_rect(head_x0, head_x1, lamp_y - 0.2, lamp_y, z, grey(rng, 150, 230, 5), POLE)


def _draw_sign(canvas: Canvas, x: float, pole_top: float, z: float) -> None:
    rng = canvas.rng
    size = rng.uniform(0.9, 1.4)
    centre_y = pole_top + size / 2 - 0.1
    seen_from_behind = rng.random() < 0.3  # a plain grey back plate: only the shape and context remain
    face = grey(rng, 90, 170, 4) if seen_from_behind else jitter(rng, [(200, 30, 30), (30, 75, 180), (230, 200, 40),
                                                                       (230, 230, 230)][rng.integers(4)], 12)
    shape = rng.choice(['circle', 'triangle', 'square', 'board'])
    centre = canvas.project(x, centre_y, z)
    half = size / 2 * canvas.scale(z)
    if shape == 'circle':
        canvas.disc(centre, half, face, TRAFFIC_SIGN)
        if not seen_from_behind:
            canvas.disc(centre, half * 0.7, grey(rng, 200, 245, 4), None)
    elif shape == 'triangle':
        points = centre + np.array([(-half, half * 0.8), (half, half * 0.8), (0, -half)])
        canvas.fill(points, face, TRAFFIC_SIGN)
    else:
        aspect = 1.0 if shape == 'square' else rng.uniform(1.5, 2.5)
        canvas.front_rect(x - size * aspect / 2, x + size * aspect / 2, centre_y - size / 2, centre_y + size / 2, z,
                          face, TRAFFIC_SIGN)


def _draw_traffic_light(canvas: Canvas, x: float, bottom: float, z: float) -> None:
    rng = canvas.rng
    housing = jitter(rng, (30, 30, 32), 6) if rng.random() < 0.7 else jitter(rng, (190, 165, 50), 12)
    width, height = 0.55, 1.5
    canvas.front_rect(x - width / 2, x + width / 2, bottom, bottom + height, z, housing, TRAFFIC_LIGHT)
    if rng.random() < 0.3:
        return  # seen from behind: an unlit box
    lit = int(rng.integers(3))
    for lamp, on_colour in enumerate([(255, 40, 30), (255, 190, 30), (60, 255, 120)]):
        lamp_colour = jitter(rng, on_colour, 10) if lamp == lit else grey(rng, 20, 60, 5)
        centre = canvas.project(x, bottom + height * (0.8 - 0.3 * lamp), z)
        canvas.disc(centre, 0.1 * canvas.scale(z), lamp_colour, None)


def draw_bin(canvas: Canvas, x: float, z: float) -> None:
    colour = jitter(canvas.rng, [(40, 90, 50), (60, 60, 60), (140, 140, 140), (20, 20, 20)][canvas.rng.integers(4)], 10)
    canvas.box(x - 0.3, x + 0.3, 0, canvas.rng.uniform(0.8, 1.2), z, z + 0.6, colour, IGNORE_INDEX)
