"""Finishing a drawn scene: the ego car's bonnet, texture, light, camera colour response, blur, noise, roll."""
import math

import cv2
import numpy as np

from .canvas import ONE, SHIFT, Canvas
from .classes import (
    BUILDING,
    BUS,
    CAR,
    FENCE,
    IGNORE_INDEX,
    ROAD,
    SIDEWALK,
    SKY,
    TERRAIN,
    TRAIN,
    TRUCK,
    VEGETATION,
    WALL,
)
from .colours import grey, rgb, smooth_noise, vehicle_colour

Colour = np.ndarray  # float RGB triple in 0..255

# Texture strength per train ID (std of grey levels added by the fine, medium and coarse noise fields). Texture,
# not mean colour, is what tells e.g. road (fine grain, large blotches) from sidewalk or foliage.
TEXTURE_AMPLITUDE = np.zeros((3, 256), np.float32)
TEXTURE_AMPLITUDE[:] = np.array([3.0, 2.0, 3.0])[:, None]  # classes not listed below, and void
for _train_id, _amplitude in {
        ROAD: (6.0, 3.0, 9.0),
        SIDEWALK: (5.0, 5.0, 4.0),
        BUILDING: (3.0, 4.0, 9.0),
        WALL: (5.0, 7.0, 6.0),
        FENCE: (4.0, 3.0, 3.0),
        VEGETATION: (9.0, 22.0, 10.0),
        TERRAIN: (10.0, 10.0, 8.0),
        SKY: (1.0, 1.0, 3.0),
        CAR: (2.0, 1.0, 2.0),
        TRUCK: (2.0, 2.0, 3.0),
        BUS: (2.0, 2.0, 3.0),
        TRAIN: (2.0, 2.0, 3.0)
}.items():
    TEXTURE_AMPLITUDE[:, _train_id] = _amplitude


def draw_ego_hood(canvas: Canvas) -> None:
    """The bonnet of the recording car along the bottom edge: void, as in Cityscapes."""
    rng = canvas.rng
    hood_height = canvas.height * rng.uniform(0.05, 0.13)
    centre_x = canvas.width * rng.uniform(0.4, 0.6)
    xs = np.linspace(-0.05 * canvas.width, 1.05 * canvas.width, 24)
    ys = canvas.height - hood_height * (1 - 0.6 * ((xs - centre_x) / (0.6 * canvas.width))**2)
    outline = np.concatenate(
        [np.stack([xs, ys], 1), [(1.05 * canvas.width, canvas.height + 1), (-0.05 * canvas.width, canvas.height + 1)]])
    canvas.fill(outline, vehicle_colour(rng) * 0.6, IGNORE_INDEX)
    highlight = np.stack([xs, ys + hood_height * 0.3], 1)
    cv2.polylines(canvas.image, [np.round(highlight * ONE).astype(np.int32)], False, rgb(grey(rng, 120, 200, 8)), 1,
                  cv2.LINE_8, SHIFT)


def finish_image(canvas: Canvas) -> None:
    """Texture, uneven light, global colour jitter, optics blur and sensor noise: image only, labels stay."""
    rng = canvas.rng
    height, width = canvas.height, canvas.width
    fine = (rng.random((height, width), dtype=np.float32) - np.float32(0.5)) * np.float32(math.sqrt(12))
    medium = smooth_noise(rng, height, width, max(2.0, width / 100))
    coarse = smooth_noise(rng, height, width, width / 12)
    texture = (TEXTURE_AMPLITUDE[0][canvas.label] * fine + TEXTURE_AMPLITUDE[1][canvas.label] * medium +
               TEXTURE_AMPLITUDE[2][canvas.label] * coarse)
    # Vignetting and a light gradient across the frame.
    xs = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
    ys = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
    light = (1 - np.float32(rng.uniform(0, 0.125)) * (xs * xs + ys * ys) + np.float32(rng.uniform(-0.075, 0.075)) * xs)
    canvas.image *= light[..., None]
    canvas.image += texture[..., None]
    foliage = canvas.label == VEGETATION  # foliage varies in hue, not only in brightness
    canvas.image[..., 1] += np.where(foliage, np.float32(8) * medium, np.float32(0))
    # Camera contrast, white balance, exposure and saturation compose into one affine colour transform.
    mean = np.array(cv2.mean(canvas.image)[:3])
    contrast = rng.uniform(0.7, 1.3)
    gains = rng.uniform(0.82, 1.18, 3) * rng.uniform(0.75, 1.2)
    offset = rng.uniform(-20, 20)
    saturation = rng.uniform(0.5, 1.3)
    to_grey = np.full((3, 3), 1 / 3)
    desaturate = saturation * np.eye(3) + (1 - saturation) * to_grey
    matrix = desaturate @ np.diag(gains * contrast)
    bias = desaturate @ (gains * (1 - contrast) * mean + offset)
    canvas.image = cv2.transform(canvas.image, np.hstack([matrix, bias[:, None]]).astype(np.float32))
    sigma = rng.uniform(0.0, 1.1)
    if sigma > 0.3:
        canvas.image = cv2.GaussianBlur(canvas.image, (0, 0), sigma)
    # Sensor noise; uniform rather than Gaussian because it is three times cheaper to draw and looks the same.
    noise_std = rng.uniform(2, 9)
    canvas.image += (rng.random(canvas.image.shape, dtype=np.float32) - np.float32(0.5)) * np.float32(
        noise_std * math.sqrt(12))


def roll_camera(canvas: Canvas) -> None:
    """Rotate the frame a little; pixels rotated in from outside are black and void."""
    angle = canvas.rng.uniform(-3, 3)
    matrix = cv2.getRotationMatrix2D((canvas.width / 2, canvas.height / 2), angle, 1.0)
    size = (canvas.width, canvas.height)
    canvas.image = cv2.warpAffine(canvas.image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                  borderValue=0)
    canvas.label = cv2.warpAffine(canvas.label, matrix, size, flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                                  borderValue=IGNORE_INDEX)
