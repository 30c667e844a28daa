"""How much running the teacher in bf16 / fp16 (and channels_last) saves, and how much its logits and the loss move
(the logic of ``tools/analysis_tools/benchmark_teacher_precision.py``).

For each teacher setting (fp32, bf16, fp16, bf16 + channels_last, as the distiller's ``teacher_precision`` /
``teacher_channels_last`` run it), on one batch: the teacher's no-grad forward time (median after one warm-up); the
largest and the mean absolute change of its logits against fp32; the relative change ``|L - L_fp32| / L_fp32`` of
the config's distillation losses (their sum), the student's logits fixed; the share of pixels whose teacher
prediction is fp32's. The batch is the config's training data (its pipeline: crops, labels with ignored pixels)
when its data root exists, else N(0, 1) images with random labels.
"""
import copy
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmseg.registry import DATASETS
from torch import Tensor, nn

from ..datasets.checks import MissingDataError, check_data_roots
from ..models.loss_set import distill_loss_dict
from ..utils.tables import markdown_table
from .distiller import crop_size, random_seg_batch
from .timing import median_seconds

# (teacher_precision, teacher_channels_last), fp32 first: the reference of the others. channels_last last: it
# converts the teacher's weights in place.
SETTINGS = (('fp32', False), ('bf16', False), ('fp16', False), ('bf16', True))
HEADER = ['teacher', 'teacher ms', 'max abs logit change', 'mean abs logit change', 'relative loss change',
          'argmax agreement %']


def training_batch(cfg: Config, distiller: nn.Module, batch: int, device: str) -> Tuple[Tensor, list]:
    """The first ``batch`` images of the config's training set through its pipeline and the data preprocessor."""
    torch.manual_seed(0)  # the pipeline's random resize, crop, flip and colour changes
    dataset = DATASETS.build(copy.deepcopy(cfg.train_dataloader.dataset))
    data = pseudo_collate([dataset[index % len(dataset)] for index in range(batch)])
    data = distiller.data_preprocessor(data, training=True)
    return data['inputs'].to(device), [sample.to(device) for sample in data['data_samples']]


def batch_of(cfg: Config, distiller: nn.Module, batch: int, device: str, random_inputs: bool = False,
             crop: Optional[Sequence[int]] = None) -> Tuple[Tensor, list, str]:
    """The training batch when the config's data root exists (and not ``random_inputs``), else a random one of
    ``crop`` (default: the config's); and where it came from."""
    reason = '--random-inputs'
    if not random_inputs:
        try:
            check_data_roots(cfg, ['train_dataloader'])
        except MissingDataError as missing:
            reason = str(missing)
        else:
            inputs, samples = training_batch(cfg, distiller, batch, device)
            return inputs, samples, (f'{batch} training images of {cfg.train_dataloader.dataset.data_root} '
                                     'through the pipeline')
    crop = crop_size(cfg, crop)
    inputs, samples = random_seg_batch(batch, crop, distiller.student.num_classes, device)
    return inputs, samples, f'{batch} N(0, 1) images of {crop[0]}x{crop[1]}, random labels ({reason})'


def _total_distill_loss(distiller: nn.Module, student_logits: Tensor, teacher_logits: Tensor, gt: Tensor) -> float:
    losses = distill_loss_dict(distiller.distill_losses, student_logits, teacher_logits, gt, 'distill', 1.0)
    return sum(value.item() for key, value in losses.items() if 'loss' in key)


def precision_table(distiller: nn.Module, inputs: Tensor, samples: list, repeats: int,
                    device: str) -> Tuple[str, str]:
    """The table of every setting (markdown), and a line on the fp32 logits and loss it is relative to."""
    gt = torch.stack([sample.gt_sem_seg.data for sample in samples])
    with torch.no_grad():
        student_logits = distiller.student_logits(inputs)
    rows: List[list] = []
    reference = reference_loss = None
    for precision, channels_last in SETTINGS:
        distiller.set_teacher(distiller.teacher, precision, channels_last)
        milliseconds = 1000 * median_seconds(lambda: distiller.teacher_logits(inputs), repeats, device)
        logits, _ = distiller.teacher_logits(inputs)
        loss = _total_distill_loss(distiller, student_logits, logits, gt)
        if reference is None:
            reference, reference_loss = logits, loss
            summary = (f'fp32 teacher logits: mean abs {logits.abs().mean().item():.3g}, max abs '
                       f'{logits.abs().max().item():.3g}; fp32 distillation loss {loss:.4g}')
        change = (logits - reference).abs()
        agreement = 100 * (logits.argmax(1) == reference.argmax(1)).float().mean().item()
        rows.append([precision + (' + channels_last' if channels_last else ''), f'{milliseconds:.1f}',
                     f'{change.max().item():.2e}', f'{change.mean().item():.2e}',
                     f'{abs(loss - reference_loss) / abs(reference_loss):.2e}', f'{agreement:.3f}'])
    return markdown_table(HEADER, rows), summary
