"""Traffic: parked and moving cars, trucks, buses, trams, motorcycles and bicycles with their riders."""
from functools import partial
from typing import Callable, List, Tuple

import cv2
import numpy as np

from .canvas import ONE, SHIFT, Canvas
from .classes import BICYCLE, BUS, CAR, IGNORE_INDEX, MOTORCYCLE, RIDER, TRAIN, TRUCK
from .colours import clip_colour, grey, jitter, rgb, vehicle_colour
from .layout import Occupancy, Street
from .people import draw_person


def plan_traffic(canvas: Canvas, street: Street, occupancy: Occupancy,
                 objects: List[Tuple[float, Callable[[], None]]]) -> None:
    rng = canvas.rng
    z_min = max(canvas.z_bottom * 0.9, 3.0)

    def random_depth(far: float = 70.0) -> float:
        return z_min + (far - z_min) * rng.random()**1.5  # more traffic near the camera

    def lane_faces_camera(lane: int) -> bool:
        return street.two_way and lane < street.num_lanes // 2

    # Parked cars in rows along the kerb: they hide each other almost completely.
    for side in (-1, 1):
        if rng.random() < 0.5:
            x_centre = street.kerb(side) - side * 1.1
            z = random_depth(25)
            for _ in range(int(rng.integers(2, 7))):
                length = rng.uniform(3.9, 4.8)
                if not street.in_cross_street(z, z + length) and occupancy.try_take(x_centre - 0.95, x_centre + 0.95, z,
                                                                                    z + length, 0.1):
                    objects.append((z, partial(draw_car, canvas, x_centre, z, length, bool(rng.random() < 0.5))))
                z += length + rng.uniform(0.3, 2.5)

    # Long vehicles first, while the road is still free: placed after the cars, they rarely found room.
    vehicles = ['train'] * int(rng.random() < 0.3) + ['bus'] * int(rng.random() < 0.45)
    vehicles += ['truck'] * int(rng.random() < 0.5) + ['car'] * int(rng.integers(1, 9))
    vehicles += ['motorcycle'] * int(rng.integers(0, 3)) + ['bicycle'] * int(rng.integers(0, 3))
    for vehicle in vehicles:
        for _ in range(10):  # a few tries to find free road
            lane = int(rng.integers(street.num_lanes))
            x_centre = street.lane_centre(lane) + rng.normal(0, 0.25)
            # Big vehicles further off, or they fill the whole frame.
            if vehicle in ('truck', 'bus', 'train'):
                z = max(random_depth(), 7.0)
            else:  # two-wheelers mostly near, or they shrink to a few pixels
                z = random_depth(70.0 if vehicle == 'car' else 35.0)
            facing = lane_faces_camera(lane)
            if vehicle == 'car':
                length, half_width = rng.uniform(3.9, 4.9), 0.95
                draw = partial(draw_car, canvas, x_centre, z, length, facing)
            elif vehicle == 'truck':
                length, half_width = rng.uniform(7, 10), 1.25
                draw = partial(draw_truck, canvas, x_centre, z, length, facing)
            elif vehicle == 'bus':
                length, half_width = rng.uniform(11, 13), 1.28
                draw = partial(draw_bus, canvas, x_centre, z, length, facing)
            elif vehicle == 'train':  # a tram running down the middle of the road
                x_centre = (street.road_left + street.road_right) / 2
                length, half_width = rng.uniform(20, 32), 1.33
                draw = partial(draw_tram, canvas, x_centre, z, length, facing)
            else:  # two-wheelers keep to the right edge of their lane
                x_centre = street.lane_centre(lane) + street.lane_width * 0.3
                length, half_width = (2.0, 0.4) if vehicle == 'motorcycle' else (1.8, 0.3)
                draw = partial(draw_two_wheeler, canvas, vehicle, x_centre, z)
            if occupancy.try_take(x_centre - half_width, x_centre + half_width, z, z + length):
                objects.append((z, draw))
                break


def _draw_wheels_on_side(canvas: Canvas, x_side: float, z0: float, z1: float, radius: float) -> None:
    """Dark tyres at both ends of a vehicle's visible side; drawn after the body, labelled with it.

    The side is seen at a slant, so each tyre is an ellipse narrowed by how fast depth shrinks across it.
    """
    if z0 < canvas.z_near:
        return
    tyre = rgb(grey(canvas.rng, 15, 40, 3))
    for z in (z0 + radius * 2.2, z1 - radius * 2.2):
        centre = canvas.project(x_side, radius, z)
        near_edge, far_edge = canvas.project(x_side, radius, [z - radius, z + radius])
        half_width = max(abs(near_edge[0] - far_edge[0]) / 2, 0.5)
        axes = (int(round(half_width * ONE)), max(int(round(radius * canvas.scale(z) * ONE)), int(ONE) // 2))
        centre_fixed = (int(round(centre[0] * ONE)), int(round(centre[1] * ONE)))
        cv2.ellipse(canvas.image, centre_fixed, axes, 0, 0, 360, tyre, -1, cv2.LINE_8, SHIFT)


def _vehicle_shadow(canvas: Canvas, x0: float, x1: float, z0: float, z1: float) -> None:
    """Dark contact shadow under a vehicle (image only: the ground keeps its label)."""
    canvas.ground_quad(x0 - 0.1, x1 + 0.1, z0 - 0.2, z1 + 0.1, grey(canvas.rng, 10, 35, 3), None)


def draw_car(canvas: Canvas, x_centre: float, z0: float, length: float, facing_camera: bool) -> None:
    rng = canvas.rng
    half_width = rng.uniform(0.82, 0.98)
    x0, x1, z1 = x_centre - half_width, x_centre + half_width, z0 + length
    body_top, roof = rng.uniform(0.8, 1.0), rng.uniform(1.35, 1.75)
    paint = vehicle_colour(rng)
    glass = grey(rng, 20, 70, 6)
    _vehicle_shadow(canvas, x0, x1, z0, z1)
    canvas.box(x0, x1, 0.15, body_top, z0, z1, paint, CAR)
    cabin_z0, cabin_z1 = z0 + length * rng.uniform(0.18, 0.3), z1 - length * rng.uniform(0.15, 0.3)
    canvas.box(x0 + 0.08, x1 - 0.08, body_top, roof, cabin_z0, cabin_z1, paint, CAR)
    visible_side = x0 if x0 > 0 else (x1 if x1 < 0 else None)
    if visible_side is not None:
        canvas.facade_quad(visible_side, cabin_z0 + 0.15, cabin_z1 - 0.15, body_top + 0.08, roof - 0.08, glass, None)
        _draw_wheels_on_side(canvas, visible_side, z0, z1, 0.32)
    canvas.front_rect(x0 + 0.2, x1 - 0.2, body_top + 0.08, roof - 0.08, cabin_z0, glass, None)  # windscreen
    canvas.front_rect(x0 + 0.05, x0 + 0.3, 0.0, 0.2, z0, grey(rng, 15, 35, 3), CAR)  # tyres under the bumper
    canvas.front_rect(x1 - 0.3, x1 - 0.05, 0.0, 0.2, z0, grey(rng, 15, 35, 3), CAR)
    lamp = (jitter(rng, (240, 235, 210), 8) if facing_camera else jitter(rng, (200, 25, 25), 15))
    for lamp_x in (x0 + 0.08, x1 - 0.33):
        canvas.front_rect(lamp_x, lamp_x + 0.25, body_top - 0.25, body_top - 0.1, z0, lamp, None)
    # Licence plates are void in Cityscapes.
    canvas.front_rect(x_centre - 0.26, x_centre + 0.26, 0.35, 0.47, z0, grey(rng, 200, 240, 4), IGNORE_INDEX)


def draw_truck(canvas: Canvas, x_centre: float, z0: float, length: float, facing_camera: bool) -> None:
    rng = canvas.rng
    cab_length, cab_top, cargo_top = 2.2, rng.uniform(2.7, 3.1), rng.uniform(3.2, 3.9)
    x0, x1 = x_centre - 1.25, x_centre + 1.25
    cab_colour, cargo_colour = vehicle_colour(rng), vehicle_colour(rng)
    _vehicle_shadow(canvas, x0, x1, z0, z0 + length)
    if facing_camera:  # cab first, cargo box behind it
        canvas.box(x0, x1, 0.6, cargo_top, z0 + cab_length + 0.3, z0 + length, cargo_colour, TRUCK)
        canvas.box(x0 + 0.05, x1 - 0.05, 0.4, cab_top, z0, z0 + cab_length, cab_colour, TRUCK)
        canvas.front_rect(x0 + 0.15, x1 - 0.15, cab_top - 1.1, cab_top - 0.2, z0, grey(rng, 20, 70, 6), None)
    else:  # only the back of the cargo box, with doors
        canvas.box(x0 + 0.05, x1 - 0.05, 0.4, cab_top, z0 + length - cab_length, z0 + length, cab_colour, TRUCK)
        canvas.box(x0, x1, 0.6, cargo_top, z0, z0 + length - cab_length - 0.3, cargo_colour, TRUCK)
        canvas.front_rect(x_centre - 0.02, x_centre + 0.02, 0.7, cargo_top - 0.1, z0, clip_colour(cargo_colour * 0.6),
                          None)
    visible_side = x0 if x0 > 0 else (x1 if x1 < 0 else None)
    if visible_side is not None:
        _draw_wheels_on_side(canvas, visible_side, z0, z0 + length, 0.48)
    for wheel_x in (x0 + 0.1, x1 - 0.45):
        canvas.front_rect(wheel_x, wheel_x + 0.35, 0.0, 0.6, z0 + 0.5, grey(rng, 15, 35, 3), TRUCK)


def draw_bus(canvas: Canvas, x_centre: float, z0: float, length: float, facing_camera: bool) -> None:
    rng = canvas.rng
    x0, x1, z1, top = x_centre - 1.28, x_centre + 1.28, z0 + length, rng.uniform(3.0, 3.3)
    paint = jitter(rng, [(200, 30, 30), (230, 190, 40), (235, 235, 235), (40, 90, 170)][rng.integers(4)], 15)
    glass = grey(rng, 15, 60, 6)
    _vehicle_shadow(canvas, x0, x1, z0, z1)
    canvas.box(x0, x1, 0.3, top, z0, z1, paint, BUS)
    visible_side = x0 if x0 > 0 else (x1 if x1 < 0 else None)
    if visible_side is not None:
        canvas.facade_quad(visible_side, z0 + 0.8, z1 - 0.8, 1.2, top - 0.4, glass, None)  # window band
        _draw_wheels_on_side(canvas, visible_side, z0, z1, 0.5)
    window_bottom = 1.0 if facing_camera else 1.8
    canvas.front_rect(x0 + 0.15, x1 - 0.15, window_bottom, top - 0.35, z0, glass, None)
    canvas.front_rect(x0 + 0.3, x1 - 0.3, top - 0.3, top - 0.08, z0, jitter(rng, (240, 160, 40), 10), None)


def draw_tram(canvas: Canvas, x_centre: float, z0: float, length: float, facing_camera: bool) -> None:
    rng = canvas.rng
    x0, x1, z1, top = x_centre - 1.33, x_centre + 1.33, z0 + length, rng.uniform(3.3, 3.6)
    paint = jitter(rng, [(230, 230, 230), (210, 40, 40), (235, 200, 40), (70, 150, 90)][rng.integers(4)], 12)
    glass = grey(rng, 15, 60, 6)
    # Rails in the road surface; Cityscapes' rail track class is void.
    for rail_x in (x_centre - 0.72, x_centre + 0.72):
        canvas.ground_quad(rail_x - 0.04, rail_x + 0.04, canvas.z_near, 150, grey(rng, 40, 140, 5), IGNORE_INDEX)
    _vehicle_shadow(canvas, x0, x1, z0, z1)
    canvas.box(x0, x1, 0.35, top, z0, z1, paint, TRAIN)
    visible_side = x0 if x0 > 0 else (x1 if x1 < 0 else None)
    if visible_side is not None:
        for section_start in np.arange(z0 + 1.0, z1 - 2.0, 4.5):
            canvas.facade_quad(visible_side, section_start, section_start + 3.2, 1.3, top - 0.5, glass, None)
    canvas.front_rect(x0 + 0.2, x1 - 0.2, 1.2, top - 0.4, z0, glass, None)
    # Pantograph: a thin frame on the roof reaching for the overhead wire.
    base, tip = canvas.project(x_centre, top, z0 + length / 2), canvas.project(x_centre, top + 1.2, z0 + length / 2)
    canvas.line(base, tip, 1, grey(rng, 30, 90, 4), TRAIN)


def draw_two_wheeler(canvas: Canvas, kind: str, x: float, z: float) -> None:
    """A motorcycle or bicycle seen from behind (or ahead) with its rider."""
    rng = canvas.rng
    if z < canvas.z_near:
        return
    if kind == 'motorcycle':
        train_id, wheel_width, colour = MOTORCYCLE, 0.16, vehicle_colour(rng)
        canvas.front_rect(x - wheel_width / 2, x + wheel_width / 2, 0, 0.62, z, grey(rng, 15, 35, 3), train_id)
        canvas.front_rect(x - 0.32, x + 0.32, 0.4, 0.95, z, colour, train_id)
        canvas.front_rect(x - 0.4, x + 0.4, 1.05, 1.12, z, grey(rng, 20, 60, 4), train_id)  # handlebar
        canvas.front_rect(x - 0.08, x + 0.08, 0.75, 0.85, z - 0.01, jitter(rng, (210, 30, 30), 10), None)
        rider_base, helmet = 0.5, True
    else:
        train_id = BICYCLE
        canvas.front_rect(x - 0.05, x + 0.05, 0, 0.68, z, grey(rng, 10, 60, 4), train_id)
        # A rear rack with a crate or panniers: what makes a bicycle seen from behind more than a line.
        canvas.front_rect(x - 0.2, x + 0.2, 0.45, 0.75, z - 0.05, jitter(rng, (60, 60, 60), 40), train_id)
        handlebar = canvas.project([x - 0.28, x + 0.28], 1.0, z)
        canvas.line(handlebar[0], handlebar[1], 1, grey(rng, 20, 120, 5), train_id)
        rider_base, helmet = 0.35, rng.random() < 0.4
    draw_person(canvas, x, z, rng.uniform(1.25, 1.4), RIDER, base_y=rider_base, helmet=helmet,
                legs_apart=kind == 'motorcycle')
