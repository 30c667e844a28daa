"""People: pedestrians on sidewalks and crosswalks, riders, and bicycles parked side-on."""
from functools import partial
from typing import Callable, List, Tuple

import cv2
import numpy as np

from .canvas import ONE, SHIFT, Canvas
from .classes import BICYCLE, PERSON
from .colours import clip_colour, clothes_colour, grey, jitter, rgb, skin_colour, vehicle_colour
from .layout import Occupancy, Street


def plan_pedestrians(canvas: Canvas, street: Street, occupancy: Occupancy,
                     objects: List[Tuple[float, Callable[[], None]]]) -> None:
    rng = canvas.rng
    z_min = max(canvas.z_bottom * 0.9, 3.0)
    for _ in range(int(rng.poisson(4.0))):
        side = int(rng.choice([-1, 1]))
        inner, outer = street.sidewalk_inner(side), street.sidewalk_outer(side)
        x = rng.uniform(min(inner, outer) + 0.3, max(inner, outer) - 0.3)
        z = rng.uniform(z_min, 35)
        for member in range(int(rng.choice([1, 1, 1, 2, 3]))):  # people walk in small groups
            member_x, member_z = x + member * rng.uniform(0.4, 0.7), z + rng.normal(0, 0.4)
            if member_z > z_min and occupancy.try_take(member_x - 0.25, member_x + 0.25, member_z, member_z + 0.3,
                                                       0.05):
                objects.append(
                    (member_z, partial(draw_person, canvas, member_x, member_z, rng.uniform(1.55, 1.95), PERSON)))
    if rng.random() < 0.5:  # parked bicycles on the sidewalk, seen side-on
        side = int(rng.choice([-1, 1]))
        x = street.sidewalk_outer(side) - side * 0.8
        z = rng.uniform(z_min, 30)
        for _ in range(int(rng.integers(1, 4))):
            objects.append((z, partial(draw_bicycle_side_on, canvas, x, z)))
            z += rng.uniform(0.5, 0.9)
    if street.crosswalk is not None:
        for _ in range(int(rng.integers(0, 5))):
            x = rng.uniform(street.road_left, street.road_right)
            z = rng.uniform(*street.crosswalk)
            if occupancy.try_take(x - 0.25, x + 0.25, z, z + 0.3, 0.05):
                objects.append((z, partial(draw_person, canvas, x, z, rng.uniform(1.55, 1.95), PERSON)))


def draw_person(canvas: Canvas, x: float, z: float, height: float, train_id: int, base_y: float = 0.0,
                helmet: bool = False, legs_apart: bool = False) -> None:
    """A pedestrian (or a rider on a seat at ``base_y``): legs, torso, arms and head, a few pixels wide."""
    rng = canvas.rng
    if z < canvas.z_near:
        return
    px = canvas.scale(z) * height  # the person's height in pixels
    foot_u, foot_v = canvas.project(x, base_y, z)
    trousers, top = clothes_colour(rng), clothes_colour(rng)
    stride = px * (0.12 if legs_apart else rng.uniform(0.0, 0.09))
    hip_v, shoulder_v = foot_v - 0.47 * px, foot_v - 0.82 * px
    for direction in (-1, 1):
        leg_top = foot_u + direction * 0.045 * px
        leg_bottom = leg_top + direction * stride
        canvas.fill(
            np.array([(leg_top - 0.035 * px, hip_v), (leg_top + 0.035 * px, hip_v), (leg_bottom + 0.03 * px, foot_v),
                      (leg_bottom - 0.03 * px, foot_v)]), trousers, train_id)
    canvas.fill(
        np.array([(foot_u - 0.12 * px, shoulder_v), (foot_u + 0.12 * px, shoulder_v),
                  (foot_u + 0.09 * px, hip_v + 0.03 * px), (foot_u - 0.09 * px, hip_v + 0.03 * px)]), top, train_id)
    arm_swing = rng.uniform(-0.06, 0.06) * px
    for direction in (-1, 1):
        shoulder = np.array([foot_u + direction * 0.11 * px, shoulder_v + 0.02 * px])
        hand = np.array([foot_u + direction * 0.14 * px + arm_swing * direction, hip_v + 0.05 * px])
        canvas.line(shoulder, hand, 0.045 * px, top, train_id)
    head_centre = np.array([foot_u, foot_v - 0.91 * px])
    canvas.disc(head_centre, 0.065 * px, skin_colour(rng), train_id)
    hair = vehicle_colour(rng) if helmet else jitter(rng, (40, 30, 20), 20)
    canvas.disc(head_centre - np.array([0, 0.02 * px]), (0.08 if helmet else 0.06) * px, hair, train_id)
    if rng.random() < 0.25:  # a bag
        bag_u = foot_u + rng.choice([-1, 1]) * 0.15 * px
        canvas.fill(
            np.array([(bag_u - 0.05 * px, hip_v - 0.05 * px), (bag_u + 0.05 * px, hip_v - 0.05 * px),
                      (bag_u + 0.05 * px, hip_v + 0.08 * px), (bag_u - 0.05 * px, hip_v + 0.08 * px)]),
            clothes_colour(rng), train_id)


def draw_bicycle_side_on(canvas: Canvas, x: float, z: float) -> None:
    """Two thin wheel rings and a frame: among the thinnest objects in the scene."""
    rng = canvas.rng
    if z < canvas.z_near:
        return
    colour = clip_colour(rng.uniform(10, 220, 3))
    scale = canvas.scale(z)
    thickness = max(1.0, 0.05 * scale)
    rear, front = canvas.project(x - 0.55, 0.34, z), canvas.project(x + 0.55, 0.34, z)
    for hub in (rear, front):
        centre = (int(round(hub[0] * ONE)), int(round(hub[1] * ONE)))
        radius = max(int(round(0.34 * scale * ONE)), int(ONE))
        cv2.circle(canvas.image, centre, radius, rgb(grey(rng, 15, 40, 3)), int(round(thickness)), cv2.LINE_8, SHIFT)
        cv2.circle(canvas.label, centre, radius, BICYCLE, int(round(thickness)), cv2.LINE_8, SHIFT)
    seat, crank, head = (canvas.project(x - 0.2, 0.9, z), canvas.project(x, 0.3, z), canvas.project(x + 0.4, 0.95, z))
    for start, end in ((rear, seat), (seat, crank), (crank, rear), (seat, head), (head, front), (crank, head)):
        canvas.line(start, end, thickness, colour, BICYCLE)
