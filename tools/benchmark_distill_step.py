"""Time a distillation step against its parts: is distillation more than "student step + teacher forward"?

    python tools/benchmark_distill_step.py CONFIG [--crop 256 512] [--batch 2] [--repeats 5]

Builds the config's SegDistiller (the teacher with random weights unless --teacher-ckpt is given: timing does not
depend on them) and times, in one run and on the same random batch:
  student   the student's plain training step (forward, its own losses, backward, SGD step);
  teacher   the teacher's no-grad forward (features and decode-head logits);
  distill   the full distillation step (the above plus the distillation losses), as training runs it;
and prints a table with the median of --repeats runs after one warm-up, and distill / (student + teacher).
"""
import argparse
import os.path as osp
import statistics
import tempfile
import time

import torch

import gdkd_seg  # noqa: F401
from gdkd_seg.compat import syncbn_to_bn
from gdkd_seg.models import teacher_model_config
from gdkd_seg.run_config import check_cfg_options
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample


def random_batch(batch: int, crop: tuple, num_classes: int, device: str):
    height, width = crop
    inputs = torch.randn(batch, 3, height, width, device=device)
    samples = []
    for _ in range(batch):
        sample = SegDataSample(metainfo=dict(img_shape=crop, pad_shape=crop, ori_shape=crop))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, height, width), device=device))
        samples.append(sample)
    return inputs, samples


def median_seconds(step, repeats: int, device: str) -> float:
    def timed() -> float:
        if device == 'cuda':
            torch.cuda.synchronize()
        started = time.perf_counter()
        step()
        if device == 'cuda':
            torch.cuda.synchronize()
        return time.perf_counter() - started
    timed()  # warm-up
    return statistics.median(timed() for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description='Time a distillation step against its parts')
    parser.add_argument('config')
    parser.add_argument('--crop', type=int, nargs=2, metavar=('H', 'W'), help='default: the config\'s crop')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--teacher-ckpt', help='real teacher weights (default: random weights)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        check_cfg_options(cfg, args.cfg_options)
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    syncbn_to_bn(cfg.model)
    crop = tuple(args.crop or cfg.model.student.data_preprocessor['size'])
    cfg.model.student.pretrained = None
    with tempfile.TemporaryDirectory() as tmp:
        if not args.teacher_ckpt:
            teacher_cfg = teacher_model_config(cfg.model.teacher)
            syncbn_to_bn(teacher_cfg)
            teacher_cfg.pop('pretrained', None)
            teacher_cfg.pop('data_preprocessor', None)
            torch.save({'state_dict': MODELS.build(teacher_cfg).state_dict()}, osp.join(tmp, 'teacher.pth'))
            cfg.model.teacher = teacher_cfg
        cfg.model.teacher_ckpt = args.teacher_ckpt or osp.join(tmp, 'teacher.pth')
        distiller = MODELS.build(cfg.model).to(args.device).train()
    student, teacher = distiller.student, distiller.teacher
    optimizer = torch.optim.SGD(student.parameters(), lr=1e-4, momentum=0.9)
    inputs, samples = random_batch(args.batch, crop, student.decode_head.num_classes, args.device)

    def train_step(losses_of) -> None:
        optimizer.zero_grad()
        sum(value for key, value in losses_of(inputs, samples).items() if 'loss' in key).backward()
        optimizer.step()

    def teacher_forward() -> None:
        with torch.no_grad():
            teacher.decode_head(teacher.extract_feat(inputs))

    seconds = {
        'student': median_seconds(lambda: train_step(student.loss), args.repeats, args.device),
        'teacher': median_seconds(teacher_forward, args.repeats, args.device),
        'distill': median_seconds(lambda: train_step(distiller.loss), args.repeats, args.device),
    }
    ratio = seconds['distill'] / (seconds['student'] + seconds['teacher'])
    print(f'config: {args.config}\ndevice: {args.device}, batch {args.batch}, crop {crop[0]}x{crop[1]}, '
          f'median of {args.repeats} runs\n')
    print('| step | ms |\n|---|---|')
    for name, value in seconds.items():
        print(f'| {name} | {value * 1000:.1f} |')
    print(f'| distill / (student + teacher) | {ratio:.3f} |')


if __name__ == '__main__':
    main()
