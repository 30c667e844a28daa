"""Generate the procedural toy street-scene dataset in the Cityscapes layout.

Example (from the repository root)::

    python tools/make_toy_cityscapes.py --out data/toy_cityscapes --num-train 200 --num-val 50 --size 128 256

The result is read unchanged by MMSeg's ``CityscapesDataset`` with ``data_root`` set to ``--out``.
"""
import argparse
import importlib.util
import os
import sys
from types import ModuleType
from typing import List, Optional

import cv2
import numpy as np


def _load_generator_module() -> ModuleType:
    """Load the ``gdkd_seg/datasets/toy_cityscapes`` package without running ``gdkd_seg/__init__.py``.

    ``gdkd_seg``'s ``__init__`` imports torch and MMSeg and registers every model, seconds of start-up that
    drawing images does not need; the generator package itself needs only numpy and OpenCV. It is found
    through the installed ``gdkd_seg`` (editable or not), or next to this script when that is not installed.
    """
    package = importlib.util.find_spec('gdkd_seg')  # locates the package without executing it
    if package is not None and package.submodule_search_locations:
        package_dir = list(package.submodule_search_locations)[0]
    else:
        package_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'gdkd_seg')
    generator_dir = os.path.join(package_dir, 'datasets', 'toy_cityscapes')
    spec = importlib.util.spec_from_file_location('_gdkd_seg_toy_cityscapes', os.path.join(generator_dir, '__init__.py'),
                                                  submodule_search_locations=[generator_dir])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its relative imports (and dataclasses) look the package up by this name
    spec.loader.exec_module(module)
    return module


toy = _load_generator_module()


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default='data/toy_cityscapes', help='dataset root to write (default: %(default)s)')
    parser.add_argument('--num-train', type=int, default=toy.DEFAULT_NUM_TRAIN,
                        help='training images (default: %(default)s)')
    parser.add_argument('--num-val', type=int, default=toy.DEFAULT_NUM_VAL,
                        help='validation images (default: %(default)s)')
    parser.add_argument('--size', type=int, nargs=2, metavar=('H', 'W'), default=list(toy.DEFAULT_SIZE),
                        help='image height and width (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0, help='base seed; same seed, same files (default: %(default)s)')
    parser.add_argument('--preview', metavar='PNG', help='also write a grid of val images beside their labels')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace the train and val splits when --out already holds them (without it, a folder '
                        'that already holds images is refused: the old images would be read beside the new ones)')
    return parser.parse_args(argv)


def write_preview(path: str, seed: int, size: List[int], count: int = 6) -> None:
    """Write the first ``count`` val scenes, each beside its colourised label, as one PNG.

    Args:
        path: Output PNG path.
        seed: The dataset's base seed (the preview regenerates the same scenes).
        size: ``(height, width)`` of the scenes.
        count: Number of scenes stacked vertically.
    """
    rows = []
    for index in range(count):
        image, label = toy.draw_scene(toy.scene_generator(seed, 'val', index), *size)
        rows.append(np.concatenate([image, toy.colorize_label(label)], axis=1))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR)):
        raise OSError(f'could not write {path}')


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        summary = toy.make_toy_cityscapes(args.out, num_train=args.num_train, num_val=args.num_val,
                                          size=tuple(args.size), seed=args.seed, progress=not args.quiet,
                                          overwrite=args.overwrite)
    except FileExistsError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    if summary['removed_files']:
        print(f"replaced the existing train and val splits ({summary['removed_files']} files removed)")
    total_pixels = sum(summary['class_pixels'].values()) + summary['ignore_pixels']
    num_images = summary['num_images']
    print(f"wrote {num_images['train']} train + {num_images['val']} val images of "
          f"{summary['size'][0]}x{summary['size'][1]} to {summary['out_dir']} in {summary['seconds']} s "
          f"(seed {summary['seed']})")
    print(f"{len(summary['classes_present'])} of {len(toy.CITYSCAPES_CLASSES)} classes present")
    print(f"{'class':<14} {'pixels %':>9} {'images':>7}")
    for name in toy.CITYSCAPES_CLASSES:
        share = 100.0 * summary['class_pixels'][name] / max(total_pixels, 1)
        print(f"{name:<14} {share:9.3f} {summary['class_images'][name]:7d}")
    print(f"{'(ignore 255)':<14} {100.0 * summary['ignore_pixels'] / max(total_pixels, 1):9.3f}")
    if args.preview:
        write_preview(args.preview, args.seed, args.size)
        print(f'preview: {args.preview}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
