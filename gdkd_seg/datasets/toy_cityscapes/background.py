"""Sky, the distant skyline, and the ground: terrain, sidewalks, road, markings and cast shadows."""
from typing import List

import cv2
import numpy as np

from .canvas import ONE, SHIFT, Canvas
from .classes import BUILDING, ROAD, SIDEWALK, SKY, TERRAIN, VEGETATION
from .colours import (
    Colour,
    building_colour,
    clip_colour,
    grey,
    jitter,
    mix,
    road_colour,
    sidewalk_colour,
    smooth_noise,
    terrain_colour,
    vegetation_colour,
)
from .layout import SideSegment, Street

# Classes on the ground plane, which building shadows fall on.
GROUND_CLASSES = np.zeros(256, bool)
GROUND_CLASSES[[ROAD, SIDEWALK, TERRAIN]] = True


def draw_sky(canvas: Canvas) -> None:
    rng = canvas.rng
    style = rng.random()
    if style < 0.5:  # clear
        top = jitter(rng, (70, 120, 200), 15)
        bottom = jitter(rng, (170, 200, 230), 12)
        cloudiness = rng.uniform(0.0, 0.8)
    elif style < 0.85:  # overcast: as grey as concrete
        level = rng.uniform(140, 230)
        top = grey(rng, level - 25, level - 5, 4)
        bottom = grey(rng, level, level + 15, 4)
        cloudiness = rng.uniform(0.1, 0.4)
    else:  # hazy evening
        top = jitter(rng, (115, 125, 165), 15)
        bottom = jitter(rng, (220, 188, 155), 15)
        cloudiness = rng.uniform(0.0, 0.5)
    canvas.sky_horizon_colour = bottom
    blend = np.clip(np.arange(canvas.height, dtype=np.float32) / canvas.horizon_y, 0, 1)[:, None, None]
    canvas.image[:] = top.astype(np.float32) * (1 - blend) + bottom.astype(np.float32) * blend
    # Clouds only matter above the horizon; everything below is painted over.
    sky_rows = min(canvas.height, int(canvas.horizon_y) + 2)
    clouds = np.clip(smooth_noise(rng, sky_rows, canvas.width, canvas.width / 6) * 0.5 + rng.uniform(-0.7, 0.2), 0,
                     1) * np.float32(cloudiness)
    canvas.image[:sky_rows] += clouds[..., None] * (np.float32(235) - canvas.image[:sky_rows])
    canvas.label[:] = SKY


def draw_skyline(canvas: Canvas) -> None:
    """Hazy distant blocks and tree tops that make the horizon as busy as a real city's."""
    rng = canvas.rng
    haze = canvas.sky_horizon_colour
    blocks = []
    for _ in range(int(rng.integers(8, 30))):
        depth = rng.uniform(130, 400)
        height = rng.uniform(4, 25) if rng.random() < 0.85 else rng.uniform(25, 60)
        blocks.append((depth, rng.uniform(-320, 320), rng.uniform(12, 45), height))
    for depth, x, block_width, height in sorted(blocks, reverse=True):
        colour = mix(building_colour(rng), haze, rng.uniform(0.3, 0.7))
        canvas.front_rect(x, x + block_width, 0, height, depth, colour, BUILDING)
    if rng.random() < 0.5:
        for _ in range(int(rng.integers(3, 12))):
            depth = rng.uniform(100, 300)
            centre = canvas.project(rng.uniform(-250, 250), rng.uniform(3, 8), depth)
            colour = mix(vegetation_colour(rng), haze, rng.uniform(0.2, 0.5))
            canvas.disc(centre, canvas.scale(depth) * rng.uniform(3, 8), colour, VEGETATION)


def draw_ground(canvas: Canvas, street: Street) -> None:
    rng = canvas.rng
    # Everything below the horizon starts as open land; road and sidewalks are laid over it.
    below_horizon = np.array([(-1, canvas.horizon_y), (canvas.width + 1, canvas.horizon_y),
                              (canvas.width + 1, canvas.height + 1), (-1, canvas.height + 1)])
    canvas.fill(below_horizon, terrain_colour(rng), TERRAIN)
    asphalt = road_colour(rng)
    paving = sidewalk_colour(rng)
    for side in (-1, 1):
        inner, outer = street.sidewalk_inner(side), street.sidewalk_outer(side)
        canvas.ground_quad(min(inner, outer), max(inner, outer), canvas.z_near, canvas.z_far, jitter(rng, paving, 4),
                           SIDEWALK)
        if street.verge_width[side > 0] > 0:
            kerb = street.kerb(side)
            canvas.ground_quad(min(kerb, inner), max(kerb, inner), canvas.z_near, canvas.z_far, terrain_colour(rng),
                               TERRAIN)
        _draw_paving_joints(canvas, street, side, paving)
    canvas.ground_quad(street.road_left, street.road_right, canvas.z_near, canvas.z_far, asphalt, ROAD)
    if street.cross_street is not None:
        canvas.ground_quad(-150, 150, street.cross_street[0], street.cross_street[1], jitter(rng, asphalt, 5), ROAD)
    for side in (-1, 1):  # kerb stones: a light edge line that belongs to the sidewalk
        kerb = street.kerb(side)
        canvas.ground_quad(min(kerb, kerb + side * 0.2), max(kerb, kerb + side * 0.2), canvas.z_near, 150,
                           clip_colour(paving * rng.uniform(1.05, 1.3)), SIDEWALK)
    _draw_road_details(canvas, street, asphalt)


def _draw_paving_joints(canvas: Canvas, street: Street, side: int, sidewalk_colour: Colour) -> None:
    """Joint lines between paving slabs: the texture that tells a sidewalk from the road."""
    rng = canvas.rng
    inner, outer = street.sidewalk_inner(side), street.sidewalk_outer(side)
    joint_colour = clip_colour(sidewalk_colour * rng.uniform(0.65, 0.85))
    spacing = rng.uniform(1.2, 3.0)
    z = canvas.z_near + rng.uniform(0, spacing)
    while z < 45 and canvas.scale(z) * spacing > 2.5:  # stop where joints would merge into a blur
        start, end = canvas.project([inner, outer], 0.0, z)
        canvas.line(start, end, 1, joint_colour, None)
        z += spacing
    if rng.random() < 0.6:  # a joint along the sidewalk too
        middle = (inner + outer) / 2
        start, end = canvas.project(middle, 0.0, [canvas.z_near, 60])
        canvas.line(start, end, 1, joint_colour, None)


def _draw_road_details(canvas: Canvas, street: Street, road_colour: Colour) -> None:
    rng = canvas.rng
    paint = grey(rng, 195, 240, 3)
    wear = rng.uniform(0.1, 0.6)  # faded markings drift towards the asphalt colour
    marking_colour = mix(paint, road_colour, wear)
    for _ in range(int(rng.integers(0, 5))):  # patched asphalt
        x = rng.uniform(street.road_left, street.road_right - 1)
        z = rng.uniform(canvas.z_bottom, 60)
        canvas.ground_quad(x, x + rng.uniform(0.8, 3), z, z + rng.uniform(1, 6),
                           clip_colour(road_colour * rng.uniform(0.8, 1.15)), ROAD)
    dash, period = rng.uniform(2, 4), rng.uniform(8, 13)
    for lane in range(1, street.num_lanes):
        x = street.road_left + lane * street.lane_width
        solid = street.two_way and lane == street.num_lanes // 2 and rng.random() < 0.5
        z = canvas.z_near - rng.uniform(0, period)
        while z < 150:
            z_end = 150 if solid else z + dash
            canvas.ground_quad(x - 0.07, x + 0.07, z, z_end, marking_colour, ROAD)
            z = z_end + (0 if solid else period - dash)
    if rng.random() < 0.5:  # edge lines
        for side in (-1, 1):
            x = street.kerb(side) - side * 0.35
            canvas.ground_quad(x - 0.06, x + 0.06, canvas.z_near, 150, marking_colour, ROAD)
    if street.crosswalk is not None:
        z0, z1 = street.crosswalk
        stripe = rng.uniform(0.4, 0.6)
        for x in np.arange(street.road_left + 0.3, street.road_right - stripe, 2 * stripe):
            canvas.ground_quad(x, x + stripe, z0, z1, marking_colour, ROAD)


def cast_building_shadows(canvas: Canvas, segments: List[SideSegment], street: Street) -> None:
    """Darken the ground in the shadow of the buildings on the sun's far side (image only)."""
    rng = canvas.rng
    if rng.random() < 0.35:
        return  # overcast: no hard shadows
    sun_side = int(rng.choice([-1, 1]))
    reach = rng.uniform(0.2, 0.9)  # shadow length per metre of building height
    shadow_gain = np.ones((canvas.height, canvas.width), np.float32)
    for segment in segments:
        if segment.side != sun_side or segment.kind == 'open':
            continue
        x_end = segment.face_x - sun_side * segment.height * reach
        z0 = max(segment.z0, canvas.z_near)
        if segment.z1 <= z0:
            continue
        polygon = canvas.project([segment.face_x, x_end, x_end, segment.face_x], 0.0, [z0, z0, segment.z1, segment.z1])
        cv2.fillPoly(shadow_gain, [np.round(polygon * ONE).astype(np.int32)], rng.uniform(0.45, 0.7), cv2.LINE_8, SHIFT)
    shadow_gain[~GROUND_CLASSES[canvas.label]] = 1.0
    canvas.image *= shadow_gain[..., None]
