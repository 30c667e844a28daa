"""Generate the procedural toy street-scene dataset in the Cityscapes layout.

    python tools/dataset_converters/make_toy_cityscapes.py --out data/toy_cityscapes --num-train 200 --num-val 50 \
        --size 128 256

The result is read unchanged by MMSeg's ``CityscapesDataset`` with ``data_root`` set to ``--out``.
"""
from gdkd_seg.datasets import toy_cityscapes as toy
from gdkd_seg.datasets.toy_cityscapes.preview import write_preview
from gdkd_seg.engine.cli import ArgumentParser, run_tool
from gdkd_seg.utils.files import printable_path


def main() -> None:
    parser = ArgumentParser(description=__doc__.split('\n\n')[0])
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
                        help='replace the train and val splits a previous generation wrote into --out, deleting only '
                        'the files its toy_city.json lists (without it, a folder that already holds images is '
                        'refused: the old images would be read beside the new ones; a folder whose splits hold files '
                        'the generator did not write is refused either way)')
    args = parser.parse_args()
    summary = toy.make_toy_cityscapes(args.out, num_train=args.num_train, num_val=args.num_val, size=tuple(args.size),
                                      seed=args.seed, progress=not args.quiet, overwrite=args.overwrite)
    print(toy.describe_summary(summary))
    if args.preview:
        write_preview(args.preview, args.seed, args.size)
        print(f'preview: {printable_path(args.preview)}')


if __name__ == '__main__':
    run_tool(main)
