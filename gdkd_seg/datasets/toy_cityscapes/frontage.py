"""The street frontage: buildings with windows, tree lines, open lots behind walls and fences."""
import cv2
import numpy as np

from .canvas import ONE, SHIFT, Canvas
from .classes import BUILDING, FENCE, SIDEWALK, TERRAIN, VEGETATION, WALL
from .colours import (
    Colour,
    building_colour,
    clip_colour,
    fence_colour,
    grey,
    jitter,
    mix,
    rgb,
    sidewalk_colour,
    terrain_colour,
    vegetation_colour,
    wall_colour,
)
from .layout import SideSegment, Street


def draw_segment(canvas: Canvas, segment: SideSegment, street: Street) -> None:
    rng = canvas.rng
    side = segment.side
    outer = street.sidewalk_outer(side)
    if segment.face_x != outer:  # setback: a forecourt, paved or grassy
        colour, train_id = ((sidewalk_colour(rng), SIDEWALK) if rng.random() < 0.5 else (terrain_colour(rng), TERRAIN))
        canvas.ground_quad(min(outer, segment.face_x), max(outer, segment.face_x), segment.z0, segment.z1, colour,
                           train_id)
    if segment.kind == 'building':
        draw_building(canvas, segment)
        if segment.face_x != outer:  # the forecourt is often walled or fenced off from the sidewalk
            _draw_boundary(canvas, segment, outer, abs(segment.face_x - outer),
                           rng.choice(['fence', 'wall', 'none'], p=[0.35, 0.35, 0.3]))
    elif segment.kind == 'trees':
        _draw_tree_line(canvas, segment)
    else:
        _draw_open_lot(canvas, segment)


def draw_building(canvas: Canvas, segment: SideSegment) -> None:
    rng = canvas.rng
    side, x = segment.side, segment.face_x
    colour = building_colour(rng)
    # The end wall facing the camera shows where a taller building rises behind a lower one.
    canvas.front_rect(min(x, x + side * 25), max(x, x + side * 25), 0, segment.height, segment.z0,
                      clip_colour(colour * rng.uniform(0.75, 0.95)), BUILDING)
    canvas.facade_quad(x, segment.z0, segment.z1, 0, segment.height, colour, BUILDING)
    ground_floor = 0.0
    if rng.random() < 0.5:  # shop fronts
        ground_floor = rng.uniform(3, 4.2)
        canvas.facade_quad(x, segment.z0, segment.z1, 0, ground_floor,
                           mix(colour, grey(rng, 20, 90, 10), rng.uniform(0.4, 0.9)), BUILDING)
    _draw_windows(canvas, segment, colour, max(ground_floor, rng.uniform(0.8, 1.5)))
    canvas.facade_quad(x, segment.z0, segment.z1, segment.height - 0.4, segment.height,
                       clip_colour(colour * rng.uniform(0.7, 1.3)), BUILDING)  # cornice


def _draw_windows(canvas: Canvas, segment: SideSegment, wall_colour: Colour, first_sill: float) -> None:
    """A grid of window panes on a facade, vectorised because a facade may hold a hundred of them."""
    rng = canvas.rng
    floor_height = rng.uniform(2.8, 3.6)
    column_step = rng.uniform(2.0, 4.0)
    pane_height = floor_height * rng.uniform(0.4, 0.65)
    pane_length = column_step * rng.uniform(0.35, 0.7)
    sills = np.arange(first_sill + 0.3, segment.height - pane_height - 0.6, floor_height)
    starts = np.arange(segment.z0 + 0.5, segment.z1 - pane_length - 0.3, column_step)
    starts = starts[starts > canvas.z_near]
    if len(sills) == 0 or len(starts) == 0:
        return
    y0, z0 = np.meshgrid(sills, starts, indexing='ij')
    y0, z0 = y0.ravel(), z0.ravel()
    y1, z1 = y0 + pane_height, z0 + pane_length
    corners = canvas.project(segment.face_x, np.stack([y0, y0, y1, y1], 1), np.stack([z0, z1, z1, z0], 1))
    extent = corners.max(axis=1) - corners.min(axis=1)
    visible = (extent[:, 0] > 0.7) & (extent[:, 1] > 0.7)
    glass = mix(grey(rng, 25, 110, 12), canvas.sky_horizon_colour, rng.uniform(0, 0.4))
    glass = mix(glass, wall_colour, rng.uniform(0.0, 0.3))
    pane_colours = np.clip(glass + rng.normal(0, 10, (len(y0), 3)), 0, 255)
    lit = rng.random(len(y0)) < 0.05
    pane_colours[lit] = jitter(rng, (230, 205, 140), 10)
    fixed = np.round(corners * ONE).astype(np.int32)
    for pane in np.flatnonzero(visible):
        cv2.fillConvexPoly(canvas.image, fixed[pane], rgb(pane_colours[pane]), cv2.LINE_8, SHIFT)


def _draw_tree_line(canvas: Canvas, segment: SideSegment) -> None:
    rng = canvas.rng
    side, x = segment.side, segment.face_x
    canvas.ground_quad(min(x, x + side * 15), max(x, x + side * 15), segment.z0, segment.z1, terrain_colour(rng),
                       TERRAIN)
    trees = []
    z = segment.z0 + rng.uniform(0, 4)
    while z < segment.z1:
        trees.append((z, x + side * rng.uniform(0.5, 10)))
        z += rng.uniform(3, 8)
    for depth, tree_x in sorted(trees, reverse=True):
        draw_tree(canvas, tree_x, depth, segment.height * rng.uniform(0.7, 1.2))
    if rng.random() < 0.5:  # hedge along the sidewalk, in front of the trees
        canvas.facade_quad(x, segment.z0, segment.z1, 0, rng.uniform(0.8, 2.2), vegetation_colour(rng), VEGETATION)


def draw_tree(canvas: Canvas, x: float, z: float, height: float) -> None:
    """A trunk and a crown of overlapping discs; Cityscapes labels trunks as vegetation too."""
    rng = canvas.rng
    if z < canvas.z_near:
        return
    trunk_top = height * rng.uniform(0.3, 0.5)
    canvas.front_rect(x - 0.15, x + 0.15, 0, trunk_top + 0.5, z, jitter(rng, (85, 65, 45), 12), VEGETATION)
    foliage = vegetation_colour(rng)
    crown_radius = (height - trunk_top) / 2
    for _ in range(int(rng.integers(3, 7))):
        centre = canvas.project(x + rng.normal(0, crown_radius * 0.4),
                                trunk_top + crown_radius + rng.normal(0, crown_radius * 0.3), z)
        canvas.disc(centre,
                    canvas.scale(z) * crown_radius * rng.uniform(0.5, 0.9),
                    clip_colour(foliage * rng.uniform(0.75, 1.2)), VEGETATION)


def _draw_open_lot(canvas: Canvas, segment: SideSegment) -> None:
    """Grass or gravel bounded by a fence, a wall or nothing, with perhaps a building set far back."""
    rng = canvas.rng
    side, x = segment.side, segment.face_x
    lot_depth = rng.uniform(6, 30)
    if rng.random() < 0.5:
        height = rng.uniform(6, 25)
        back = SideSegment(side, 'building', segment.z0, segment.z1, x + side * lot_depth, height)
        draw_building(canvas, back)
    canvas.ground_quad(min(x, x + side * lot_depth), max(x, x + side * lot_depth), segment.z0, segment.z1,
                       terrain_colour(rng), TERRAIN)
    _draw_boundary(canvas, segment, x, lot_depth, rng.choice(['fence', 'wall', 'none'], p=[0.45, 0.4, 0.15]))


def _draw_boundary(canvas: Canvas, segment: SideSegment, x: float, depth: float, kind: str) -> None:
    """A wall or fence (``kind``; 'none' draws nothing) along the frontage at lateral position ``x``, enclosing a
    lot or forecourt ``depth`` metres deep."""
    rng = canvas.rng
    side = segment.side
    if kind == 'wall':
        top = rng.uniform(0.8, 3.0)
        colour = wall_colour(rng)
        canvas.front_rect(min(x, x + side * depth), max(x, x + side * depth), 0, top, segment.z0,
                          clip_colour(colour * 0.85), WALL)
        canvas.facade_quad(x, segment.z0, segment.z1, 0, top, colour, WALL)
        canvas.facade_quad(x, segment.z0, segment.z1, top - 0.15, top, clip_colour(colour * 1.2), WALL)
    elif kind == 'fence':
        draw_fence(canvas, x, segment.z0, segment.z1, rng.uniform(0.9, 2.0))


def draw_fence(canvas: Canvas, x: float, z0: float, z1: float, top: float) -> None:
    """Picket fence: separate slats where they resolve to pixels, a solid panel where they merge."""
    rng = canvas.rng
    colour = fence_colour(rng)
    step = rng.uniform(0.12, 0.25)
    slat = step * rng.uniform(0.4, 0.7)
    z = max(z0, canvas.z_near)
    for rail in (0.25 * top, 0.8 * top):
        canvas.facade_quad(x, z0, z1, rail, rail + 0.1, clip_colour(colour * 0.8), FENCE)
    while z < z1:
        if canvas.focal * abs(x) * step / (z * z) < 2.0:  # slats closer than 2 px: draw the rest solid
            canvas.facade_quad(x, z, z1, 0.05, top, clip_colour(colour * 0.9), FENCE)
            break
        canvas.facade_quad(x, z, z + slat, 0.05, top, jitter(rng, colour, 5), FENCE)
        z += step
