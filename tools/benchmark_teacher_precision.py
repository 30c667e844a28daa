"""How much running the teacher in bf16 / fp16 (and channels_last) saves, and how much its logits and the loss move.

    python tools/benchmark_teacher_precision.py CONFIG [--teacher-ckpt PATH] [--crop H W] [--batch 4] [--repeats 10]

Builds the config's SegDistiller once (the teacher with random weights unless --teacher-ckpt is given; the student
at its initial weights) and, for each teacher setting (fp32, bf16, fp16, bf16 + channels_last, as the distiller's
``teacher_precision`` / ``teacher_channels_last`` run it), measures on one batch:
  teacher ms        the teacher's no-grad forward, median of --repeats after one warm-up;
  max / mean |dz|   the largest and the mean absolute change of the teacher's logits against fp32;
  loss change       |L - L_fp32| / L_fp32 of the config's distillation losses (their sum), the student's logits
                    fixed;
  argmax agreement  the share of pixels whose teacher prediction is fp32's.
The batch is the config's training data (its pipeline: crops, labels with ignored pixels) when its data root
exists, else N(0, 1) images with random labels.
"""
import argparse
import copy
from typing import List, Tuple

import torch
from torch import Tensor

import gdkd_seg  # noqa: F401
from gdkd_seg.benchmark import (build_seg_distiller, crop_size, load_config, median_seconds,
                                random_seg_batch)
from gdkd_seg.datasets.checks import check_data_roots
from gdkd_seg.models.distill_losses import distill_loss_dict
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate

# (teacher_precision, teacher_channels_last), fp32 first: the reference of the others. channels_last last: it
# converts the teacher's weights in place.
SETTINGS = (('fp32', False), ('bf16', False), ('fp16', False), ('bf16', True))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Teacher precision: speed and change of the logits and the loss')
    parser.add_argument('config')
    parser.add_argument('--teacher-ckpt', help='real teacher weights (default: random weights)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--crop', type=int, nargs=2, metavar=('H', 'W'),
                        help='random inputs\' size (default: the config\'s crop)')
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--random-inputs', action='store_true',
                        help='N(0, 1) images even when the config\'s training data exists')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def training_batch(cfg: Config, distiller, batch: int, device: str) -> Tuple[Tensor, list]:
    """The first ``batch`` images of the config's training set through its pipeline and the data preprocessor."""
    from mmseg.registry import DATASETS
    torch.manual_seed(0)  # the pipeline's random resize, crop, flip and colour changes
    dataset = DATASETS.build(copy.deepcopy(cfg.train_dataloader.dataset))
    data = pseudo_collate([dataset[index % len(dataset)] for index in range(batch)])
    data = distiller.data_preprocessor(data, training=True)
    return data['inputs'].to(device), [sample.to(device) for sample in data['data_samples']]


def batch_of(cfg: Config, distiller, args: argparse.Namespace) -> Tuple[Tensor, list, str]:
    """The training batch when the config's data root exists (and --random-inputs is not given), else a random one;
    and where it came from."""
    reason = '--random-inputs'
    if not args.random_inputs:
        try:
            check_data_roots(cfg, ['train_dataloader'])
        except FileNotFoundError as missing:
            reason = str(missing)
        else:
            inputs, samples = training_batch(cfg, distiller, args.batch, args.device)
            return inputs, samples, (f'{args.batch} training images of {cfg.train_dataloader.dataset.data_root} '
                                     'through the pipeline')
    crop = crop_size(cfg, args.crop)
    inputs, samples = random_seg_batch(args.batch, crop, distiller.student.num_classes, args.device)
    return inputs, samples, f'{args.batch} N(0, 1) images of {crop[0]}x{crop[1]}, random labels ({reason})'


def total_distill_loss(distiller, student_logits: Tensor, teacher_logits: Tensor, gt: Tensor) -> float:
    losses = distill_loss_dict(distiller.distill_losses, student_logits, teacher_logits, gt, 'distill', 1.0)
    return sum(value.item() for key, value in losses.items() if 'loss' in key)


def rows(distiller, inputs: Tensor, samples: list, repeats: int, device: str) -> List[str]:
    gt = torch.stack([sample.gt_sem_seg.data for sample in samples])
    with torch.no_grad():
        student_logits = distiller.student_logits(inputs)
    table, reference, reference_loss = [], None, None
    for precision, channels_last in SETTINGS:
        distiller.set_teacher(distiller.teacher, precision, channels_last)
        milliseconds = 1000 * median_seconds(lambda: distiller.teacher_logits(inputs), repeats, device)
        logits, _ = distiller.teacher_logits(inputs)
        loss = total_distill_loss(distiller, student_logits, logits, gt)
        if reference is None:
            reference, reference_loss = logits, loss
            print(f'fp32 teacher logits: mean abs {logits.abs().mean().item():.3g}, max abs '
                  f'{logits.abs().max().item():.3g}; fp32 distillation loss {loss:.4g}\n')
        change = (logits - reference).abs()
        agreement = 100 * (logits.argmax(1) == reference.argmax(1)).float().mean().item()
        name = precision + (' + channels_last' if channels_last else '')
        table.append(f'| {name} | {milliseconds:.1f} | {change.max().item():.2e} | {change.mean().item():.2e} | '
                     f'{abs(loss - reference_loss) / abs(reference_loss):.2e} | {agreement:.3f} |')
    return table


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    distiller = build_seg_distiller(cfg, args.device, args.teacher_ckpt).eval()
    inputs, samples, source = batch_of(cfg, distiller, args)
    print(f'config: {args.config}\nteacher: {args.teacher_ckpt or "random weights"}\ndevice: {args.device}; '
          f'inputs: {source}; teacher forward: median of {args.repeats}\n')
    table = rows(distiller, inputs, samples, args.repeats, args.device)
    print('| teacher | teacher ms | max abs logit change | mean abs logit change | relative loss change | '
          'argmax agreement % |\n|---|---|---|---|---|---|')
    print('\n'.join(table))


if __name__ == '__main__':
    main()
