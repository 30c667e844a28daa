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

Defaults (chosen for a CPU demo): 128x256 images (Cityscapes' 1:2 aspect at 1/8 of its 1024x2048 size), 200 train
and 50 val images, about 18 MB on disk, generated in about 7 s on one CPU core.

Class balance: thin and rare classes are drawn larger and more often than in Cityscapes (thick poles, large signs
and lights, walled or fenced forecourts, riders and two-wheelers near the camera, a tram in about a quarter of the
scenes) and the frontage is low enough to show the sky, so that a model trained for minutes sees every class often
enough to learn it: every class covers at least 0.2% of the labelled pixels and appears in at least a fifth of
the images of the default set (``tests/datasets/test_toy_cityscapes.py`` checks a looser bound).

Modules, by concern: ``classes`` (the 19 classes and their palette), ``colours`` (per-class colour
samplers, noise), ``canvas`` (camera projection and drawing primitives), ``layout`` (street and frontage
planning), ``background`` (sky, skyline, ground), ``frontage`` (buildings, trees, walls, fences),
``street_furniture`` (poles, signs, traffic lights), ``vehicles``, ``people``, ``finishing`` (texture, camera
response, noise), ``scene`` (composing one scene), ``writer`` (the dataset on disk), ``stamp`` (its record of what
it wrote, ``toy_city.json``) and ``preview`` (a picture of it).
"""
from .classes import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, IGNORE_INDEX
from .scene import draw_scene
from .stamp import STAMP_FILE, StampError, generator_version, read_stamp, regenerate_command
from .writer import (
                     DEFAULT_CITIES,
                     DEFAULT_NUM_TRAIN,
                     DEFAULT_NUM_VAL,
                     DEFAULT_SIZE,
                     GENERATOR_VERSION,
                     DatasetExistsError,
                     describe_summary,
                     make_toy_cityscapes,
                     scene_generator,
)

__all__ = [
    'CITYSCAPES_CLASSES', 'CITYSCAPES_PALETTE', 'IGNORE_INDEX', 'DatasetExistsError', 'describe_summary', 'draw_scene',
    'make_toy_cityscapes', 'scene_generator', 'generator_version', 'read_stamp', 'regenerate_command', 'StampError',
    'DEFAULT_CITIES', 'DEFAULT_NUM_TRAIN', 'DEFAULT_NUM_VAL', 'DEFAULT_SIZE', 'GENERATOR_VERSION', 'STAMP_FILE'
]
