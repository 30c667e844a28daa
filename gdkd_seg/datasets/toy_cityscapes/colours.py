"""Random colour samplers per class (their ranges overlap on purpose: see the package docstring) and noise."""
from typing import Sequence, Tuple

import cv2
import numpy as np

Colour = np.ndarray  # float RGB triple in 0..255


def rgb(colour: Sequence[float]) -> Tuple[float, float, float]:
    """A colour as the plain float tuple OpenCV's drawing functions take."""
    return float(colour[0]), float(colour[1]), float(colour[2])


def clip_colour(colour: np.ndarray) -> Colour:
    return np.clip(np.asarray(colour, np.float64), 0.0, 255.0)


def jitter(rng: np.random.Generator, colour: Sequence[float], sigma: float) -> Colour:
    """``colour`` with independent Gaussian noise per channel."""
    return clip_colour(np.asarray(colour, np.float64) + rng.normal(0.0, sigma, 3))


def mix(colour_a: Sequence[float], colour_b: Sequence[float], weight_b: float) -> Colour:
    return clip_colour(np.asarray(colour_a, np.float64) * (1.0 - weight_b) + np.asarray(colour_b) * weight_b)


def grey(rng: np.random.Generator, low: float, high: float, tint: float) -> Colour:
    """A random grey between ``low`` and ``high`` with a slight random tint."""
    return jitter(rng, np.full(3, rng.uniform(low, high)), tint)


# --- per-class colour samplers; their ranges overlap on purpose (see the module docstring) -----------------------


def road_colour(rng: np.random.Generator) -> Colour:
    colour = grey(rng, 62, 135, 4)
    colour[2] += rng.uniform(0, 8)  # asphalt is faintly bluish
    return clip_colour(colour)


def sidewalk_colour(rng: np.random.Generator) -> Colour:
    if rng.random() < 0.3:  # warm concrete pavers
        return clip_colour(grey(rng, 90, 160, 4) * np.array([1.1, 1.0, 0.9]))
    return grey(rng, 80, 170, 5)


BUILDING_BASES = np.array([(128, 128, 128), (196, 178, 150), (150, 88, 66), (220, 218, 210), (90, 100, 112)],
                          np.float64)


def building_colour(rng: np.random.Generator) -> Colour:
    base = BUILDING_BASES[rng.integers(len(BUILDING_BASES))] * rng.uniform(0.65, 1.1)
    return jitter(rng, base, 10)


def wall_colour(rng: np.random.Generator) -> Colour:
    base = BUILDING_BASES[rng.integers(3)] * rng.uniform(0.7, 1.1)
    return jitter(rng, base, 10)


def fence_colour(rng: np.random.Generator) -> Colour:
    if rng.random() < 0.5:  # wood
        return jitter(rng, np.array([125, 95, 65]) * rng.uniform(0.6, 1.3), 10)
    return grey(rng, 70, 180, 6)


def pole_colour(rng: np.random.Generator) -> Colour:
    if rng.random() < 0.25:
        return jitter(rng, (45, 65, 50), 8)  # painted dark green
    return grey(rng, 50, 175, 5)


def vegetation_colour(rng: np.random.Generator) -> Colour:
    if rng.random() < 0.15:  # autumn foliage
        return jitter(rng, np.array([135, 115, 45]) * rng.uniform(0.7, 1.2), 12)
    return jitter(rng, np.array([62, 100, 42]) * rng.uniform(0.55, 1.35), 12)


def terrain_colour(rng: np.random.Generator) -> Colour:
    if rng.random() < 0.35:  # dry grass, gravel, earth
        return jitter(rng, np.array([150, 135, 98]) * rng.uniform(0.7, 1.15), 10)
    return jitter(rng, np.array([100, 132, 68]) * rng.uniform(0.7, 1.25), 10)


VEHICLE_PAINTS = np.array([(235, 235, 235), (28, 28, 30), (160, 162, 166), (95, 97, 100), (150, 22, 26), (28, 52, 120),
                           (32, 62, 44), (190, 176, 142), (205, 170, 45)], np.float64)


def vehicle_colour(rng: np.random.Generator) -> Colour:
    return jitter(rng, VEHICLE_PAINTS[rng.integers(len(VEHICLE_PAINTS))] * rng.uniform(0.8, 1.1), 8)


def clothes_colour(rng: np.random.Generator) -> Colour:
    return clip_colour(rng.uniform(15, 225, 3) * rng.uniform(0.4, 1.0))


SKIN_TONES = np.array([(255, 219, 172), (224, 172, 105), (198, 134, 66), (141, 85, 36), (95, 60, 35)], np.float64)


def skin_colour(rng: np.random.Generator) -> Colour:
    return jitter(rng, SKIN_TONES[rng.integers(len(SKIN_TONES))], 8)


def smooth_noise(rng: np.random.Generator, height: int, width: int, cell_px: float) -> np.ndarray:
    """Unit-variance noise whose blobs are about ``cell_px`` pixels wide (bicubic upsampling of white noise)."""
    grid_h = max(2, int(round(height / cell_px)) + 1)
    grid_w = max(2, int(round(width / cell_px)) + 1)
    coarse = rng.standard_normal((grid_h, grid_w), dtype=np.float32)
    noise = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return noise / max(float(noise.std()), 1e-6)
