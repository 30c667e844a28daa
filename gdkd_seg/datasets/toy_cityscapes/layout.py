"""Street layout planning: where the road, lanes, sidewalks and the frontage along both sides lie."""
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from .canvas import Canvas


@dataclass
class Street:
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
class SideSegment:
    """A stretch of street frontage: one building, a tree line or an open lot, at depths ``z0``..``z1``."""

    side: int
    kind: str
    z0: float
    z1: float
    face_x: float  # lateral position of the facade (or hedge, fence, wall)
    height: float = 0.0


@dataclass
class Occupancy:
    """Ground footprints already taken, so placed objects do not interpenetrate."""

    boxes: List[Tuple[float, float, float, float]] = field(default_factory=list)

    def try_take(self, x0: float, x1: float, z0: float, z1: float, margin: float = 0.3) -> bool:
        for bx0, bx1, bz0, bz1 in self.boxes:
            if x0 < bx1 + margin and bx0 < x1 + margin and z0 < bz1 + margin and bz0 < z1 + margin:
                return False
        self.boxes.append((x0, x1, z0, z1))
        return True


def plan_street(canvas: Canvas) -> Street:
    rng = canvas.rng
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
        start = rng.uniform(max(7.0, canvas.z_bottom + 1), 28)
        crosswalk = (start, start + rng.uniform(3.0, 4.5))
    return Street(lane_width, num_lanes, road_left, bool(rng.random() < 0.6), verge, sidewalk, cross_street, crosswalk)


def plan_frontage(canvas: Canvas, street: Street) -> List[SideSegment]:
    """Cut each side of the street into buildings, tree lines and open lots up to ~220 m away."""
    rng = canvas.rng
    segments = []
    for side in (-1, 1):
        z = canvas.z_near
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
            kind = rng.choice(['building', 'trees', 'open'], p=[0.45, 0.25, 0.3])
            setback = 0.0 if rng.random() < 0.6 else rng.uniform(0.5, 5.0)
            face_x = street.sidewalk_outer(side) + side * setback
            height = {
                'building': rng.uniform(5, 18) if rng.random() < 0.85 else rng.uniform(18, 35),
                'trees': rng.uniform(4, 12),
                'open': 0.0
            }[kind]
            segments.append(SideSegment(side, str(kind), z, z_end, face_x, height))
            z = z_end
    return segments
