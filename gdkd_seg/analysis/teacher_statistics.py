"""What a teacher's predictive distribution looks like, per pixel and per ground-truth class, streamed over a dataset.

GDKD splits the classes at the teacher's top-k (or top-p set); whether k = 3 suits a teacher depends on how its
probability mass spreads. Pure functions over logits and labels, and :class:`TeacherStatistics`, an accumulator of
running sums per ground-truth class whose size depends on the class count only (never on the number of pixels or
images), so a whole split streams through it. Used by :mod:`.teacher_report` (``tools/analysis_tools/
analyze_teacher.py``).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..losses import AUTHORS_MASS_CLAMP
from ..utils.errors import ConfigError

TOP_PS = (0.8, 0.9, 0.95)
# the recommendation's target: the top-k (top-p set) should hold this much of the teacher's mass
TARGET_MASS = 0.95
# the share of pixels whose top-p set a recommended k_max covers
K_MAX_COVERAGE = 0.99


def probabilities(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """``softmax(logits / T)`` over dim 1 as rows ``(P, C)`` in float64.

    Args:
        logits: ``(B, C, H, W)`` or ``(N, C)``.
        temperature: softmax temperature T.
    """
    rows = logits.movedim(1, -1).reshape(-1, logits.shape[1]) if logits.dim() > 2 else logits
    return (rows.double() / temperature).softmax(1)


def sorted_probabilities(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """:func:`probabilities` sorted in decreasing order per row."""
    return probabilities(logits, temperature).sort(1, descending=True)[0]


def below_clamp(head_first_probs: Tensor, head_sizes: Tensor, eps: float = AUTHORS_MASS_CLAMP) -> Tensor:
    """Whether the mass of each row's first ``head_sizes`` classes, or of the others, is below ``eps`` ``(P,)``:
    the pixels where the authors' mass clamp changes the mass KL. Each mass is a sum of its own probabilities
    (float64 keeps masses far below float32's eps), never one minus the other.

    Args:
        head_first_probs: probabilities ``(P, C)``, each row's head group in its first columns.
        head_sizes: the head group's size per row ``(P,)``.
        eps: the clamp.
    """
    in_head = torch.arange(head_first_probs.shape[1], device=head_first_probs.device) < head_sizes[:, None]
    head = torch.where(in_head, head_first_probs, 0.0).sum(1)
    rest = torch.where(in_head, 0.0, head_first_probs).sum(1)
    return (head < eps) | (rest < eps)


def top_p_set_sizes(sorted_probs: Tensor, top_p: float) -> Tensor:
    """The size of the smallest set of top classes whose probability reaches ``top_p``, per row ``(P,)``.

    The rule of :func:`gdkd_seg.losses.gdkd_loss` with ``partition='topp'``: a class joins while the mass of the
    classes ranked above it is still below ``top_p``.
    """
    return ((sorted_probs.cumsum(1) - sorted_probs) < top_p).sum(1)


def entropy(sorted_probs: Tensor) -> Tensor:
    """Shannon entropy in nats per row ``(P,)`` (0·log 0 counts as 0)."""
    return -(sorted_probs * sorted_probs.clamp(min=1e-300).log()).sum(1)


def pixel_maps(logits: Tensor, k: int, temperature: float = 1.0) -> Dict[str, Tensor]:
    """Per-pixel maps of one image's logits ``(C, H, W)``: ``prediction`` (argmax), ``entropy`` and
    ``top_k_mass`` (the probability of the teacher's ``k`` most probable classes), each ``(H, W)``."""
    probs = sorted_probabilities(logits[None], temperature)
    shape = logits.shape[1:]
    return dict(prediction=logits.argmax(0), entropy=entropy(probs).view(shape),
                top_k_mass=probs[:, :k].sum(1).view(shape))


class TeacherStatistics:
    """Running sums of the teacher's predictive distribution per ground-truth class.

    State (fixed size, whatever the number of images): per class the pixel count, the sums of the top-1
    probability, the top-2..5 mass and the entropy, of the cumulative top-k mass for every k ``(C, C)``, and the
    counts of the top-p set sizes for each ``p`` in ``top_ps`` ``(len(top_ps), C, C + 1)``; plus the pixels the
    teacher gets right, and the pixels where a group mass of the teacher falls below float32's eps (the authors'
    mass clamp): GDKD's top group (``k``, or the ``top_p`` set of at most ``k_max`` classes) or its rest, and
    DKD's ground-truth class or its rest.

    Args:
        num_classes: C.
        top_ps: the probabilities of the top-p sets counted.
        temperature: softmax temperature the distribution is taken at (the loss's T).
        ignore_index: label of pixels left out.
        device: where the sums live (the logits' device).
        k: GDKD's top group size, for the clamp counts.
        top_p, k_max: GDKD's top-p partition instead (``top_p`` not None).
    """

    def __init__(self, num_classes: int, top_ps: Sequence[float] = TOP_PS, temperature: float = 1.0,
                 ignore_index: int = 255, device: str = 'cpu', k: int = 3, top_p: Optional[float] = None,
                 k_max: Optional[int] = None) -> None:
        if not temperature > 0:
            raise ConfigError(f'temperature={temperature} must be > 0')
        if not all(0 < top_p <= 1 for top_p in top_ps):
            raise ConfigError(f'top_ps={tuple(top_ps)} must lie in (0, 1]')
        self.num_classes, self.top_ps = num_classes, tuple(top_ps)
        self.temperature, self.ignore_index = temperature, ignore_index
        self.k, self.top_p, self.k_max = k, top_p, k_max
        zeros = dict(dtype=torch.float64, device=device)
        self.count = torch.zeros(num_classes, **zeros)
        self.correct = torch.zeros(num_classes, **zeros)
        self.top1 = torch.zeros(num_classes, **zeros)
        self.top2to5 = torch.zeros(num_classes, **zeros)
        self.entropy = torch.zeros(num_classes, **zeros)
        self.cumulative_mass = torch.zeros(num_classes, num_classes, **zeros)
        self.set_size_counts = torch.zeros(len(self.top_ps), num_classes, num_classes + 1, **zeros)
        self.clamped_gdkd = torch.zeros(num_classes, **zeros)
        self.clamped_dkd = torch.zeros(num_classes, **zeros)

    def state(self) -> List[Tensor]:
        """Every tensor of the state (its size is the memory the statistics take)."""
        return [self.count, self.correct, self.top1, self.top2to5, self.entropy, self.cumulative_mass,
                self.set_size_counts, self.clamped_gdkd, self.clamped_dkd]

    def update(self, logits: Tensor, labels: Tensor) -> None:
        """Add a batch: ``logits`` ``(B, C, H, W)`` and ground truth ``labels`` ``(B, H, W)`` at the same size."""
        if logits.shape[1] != self.num_classes or labels.shape != logits.shape[:1] + logits.shape[2:]:
            raise ValueError(f'logits {tuple(logits.shape)} and labels {tuple(labels.shape)} do not match: expected '
                             f'(B, {self.num_classes}, H, W) and (B, H, W)')
        labels = labels.reshape(-1).long()
        valid = labels != self.ignore_index
        if (labels[valid] >= self.num_classes).any() or (labels[valid] < 0).any():
            raise ConfigError(f'labels hold values outside 0..{self.num_classes - 1} besides the ignore index '
                              f'{self.ignore_index}')
        unsorted = probabilities(logits, self.temperature)[valid]
        probs = unsorted.sort(1, descending=True)[0]
        classes = labels[valid]
        predictions = logits.argmax(1).reshape(-1)[valid]
        self.count += torch.bincount(classes, minlength=self.num_classes).double()
        self.correct += torch.bincount(classes, weights=(predictions == classes).double(),
                                       minlength=self.num_classes)
        for total, values in ((self.top1, probs[:, 0]), (self.top2to5, probs[:, 1:5].sum(1)),
                              (self.entropy, entropy(probs))):
            total += torch.bincount(classes, weights=values, minlength=self.num_classes)
        self.cumulative_mass.index_add_(0, classes, probs.cumsum(1))
        if self.top_p is None:
            head_sizes = torch.full_like(classes, self.k)
        else:
            head_sizes = top_p_set_sizes(probs, self.top_p).clamp(max=self.k_max or self.num_classes)
        self.clamped_gdkd += torch.bincount(classes, weights=below_clamp(probs, head_sizes).double(),
                                            minlength=self.num_classes)
        # DKD's groups: the ground-truth class first, then the rest
        gt_first = torch.cat([unsorted.gather(1, classes[:, None]), unsorted.scatter(1, classes[:, None], 0.0)], 1)
        self.clamped_dkd += torch.bincount(classes, weights=below_clamp(gt_first, torch.ones_like(classes)).double(),
                                           minlength=self.num_classes)
        for index, top_p in enumerate(self.top_ps):
            sizes = top_p_set_sizes(probs, top_p)
            self.set_size_counts[index].view(-1).index_add_(
                0, classes * (self.num_classes + 1) + sizes, torch.ones_like(sizes, dtype=torch.float64))

    def per_class(self) -> Dict[str, Tensor]:
        """Means per ground-truth class (NaN for classes without pixels): ``pixels``, ``accuracy``, ``top1``,
        ``top2to5``, ``entropy``, ``cumulative_mass`` ``(C, C)``, ``set_size_<p>`` for each top-p, and the shares of
        pixels with a mass below the clamp, ``clamped_gdkd`` and ``clamped_dkd``."""
        count = self.count.clamp(min=1)
        present = (self.count > 0)[:, None]
        sizes = torch.arange(self.num_classes + 1, dtype=torch.float64, device=self.count.device)
        means = dict(accuracy=self.correct / count, top1=self.top1 / count,
                     top2to5=self.top2to5 / count, entropy=self.entropy / count,
                     cumulative_mass=self.cumulative_mass / count[:, None], clamped_gdkd=self.clamped_gdkd / count,
                     clamped_dkd=self.clamped_dkd / count)
        for index, top_p in enumerate(self.top_ps):
            means[f'set_size_{top_p:g}'] = (self.set_size_counts[index] * sizes).sum(1) / count
        return dict(pixels=self.count.cpu(), **{
            key: torch.where(present if value.dim() == 2 else present[:, 0], value, float('nan')).cpu()
            for key, value in means.items()})

    def overall_cumulative_mass(self) -> Tensor:
        """Mean cumulative top-k mass over all valid pixels, for k = 1..C ``(C,)``."""
        return (self.cumulative_mass.sum(0) / self.count.sum().clamp(min=1)).cpu()

    def clamped_shares(self) -> Dict[str, float]:
        """Over all valid pixels, the shares where a teacher mass is below float32's eps: ``gdkd`` (top group or
        rest) and ``dkd`` (ground-truth class or rest)."""
        total = float(self.count.sum().clamp(min=1))
        return dict(gdkd=float(self.clamped_gdkd.sum()) / total, dkd=float(self.clamped_dkd.sum()) / total)

    def clamp_report(self) -> str:
        """One paragraph: where the authors' mass clamp would change the mass KL for this teacher."""
        shares = self.clamped_shares()
        partition = (f'k={self.k}' if self.top_p is None
                     else f'top_p={self.top_p:g}' + (f', k_max={self.k_max}' if self.k_max else ''))
        return (f"Authors' mass clamp (eps = float32 eps = {AUTHORS_MASS_CLAMP:.3g}): on {shares['gdkd']:.1%} of the "
                f"valid pixels the teacher's GDKD top-group or rest mass ({partition}, T={self.temperature:g}) is "
                f"below eps, and on {shares['dkd']:.1%} its DKD ground-truth or rest mass; there a clamped mass KL "
                f'(mass_clamp) differs from the exact one, and where the student\'s mass is also below eps it passes '
                f'no gradient.')

    def set_size_histogram(self) -> Tensor:
        """Pixel counts of each top-p set size over all classes ``(len(top_ps), C + 1)`` (index = size)."""
        return self.set_size_counts.sum(1).cpu()

    def recommendation(self, target_mass: float = TARGET_MASS) -> Tuple[dict, str]:
        """The k (and top_p, k_max) this teacher suggests for GDKDLoss, and the reasoning in one paragraph.

        The rule: ``k`` is the smallest k (at least 2: with k = 1 the KL within the top group is identically 0)
        whose mean cumulative top-k mass over valid pixels reaches ``target_mass``; for ``partition='topp'``,
        ``top_p = target_mass`` with ``k_max`` the smallest set size covering :data:`K_MAX_COVERAGE` of the pixels'
        top-p sets (when ``target_mass`` is one of ``top_ps``).

        Raises:
            ConfigError: when no pixel was counted.
        """
        total = float(self.count.sum())
        if total == 0:
            raise ConfigError('no valid pixel was seen: check the split and the labels (all ignore_index?)')
        mass = self.overall_cumulative_mass()
        reaching = (mass >= target_mass - 1e-12).nonzero()
        k = max(2, int(reaching[0]) + 1 if len(reaching) else self.num_classes)
        advice = dict(k=k, top_p=target_mass, mean_top_k_mass=float(mass[k - 1]))
        text = (f'Recommended GDKDLoss k={k}: the smallest k (at least 2, as with k=1 the top group holds one class '
                f'and its within-KL is 0) whose mean cumulative top-k teacher mass over the {int(total)} valid pixels '
                f'reaches {target_mass:g} (top-1 holds {float(mass[0]):.3f} on average, top-{k} '
                f'{float(mass[k - 1]):.3f}); the remaining '
                f'{1 - float(mass[k - 1]):.3f} of the mass is the "rest" group whose shape GDKD transfers with w2.')
        if target_mass in self.top_ps:
            histogram = self.set_size_histogram()[self.top_ps.index(target_mass)]
            cover = (histogram.cumsum(0) >= K_MAX_COVERAGE * total - 1e-9).nonzero()
            k_max = int(cover[0])
            mean_size = float((histogram * torch.arange(len(histogram), dtype=torch.float64)).sum() / total)
            single = float(histogram[1] / total)
            advice.update(k_max=k_max, mean_set_size=mean_size)
            text += (f" With partition='topp', top_p={target_mass:g} sets hold {mean_size:.2f} classes on average "
                     f'({single:.0%} of pixels need only 1 class, where a fixed k={k} adds classes the teacher '
                     f'deems near-impossible); k_max={k_max} covers {K_MAX_COVERAGE:.0%} of the pixels\' sets.')
        return advice, text


def per_class_rows(statistics: TeacherStatistics, class_names: Sequence[str]) -> Tuple[List[str], List[list]]:
    """The per-class table: a header and one row per class (name, pixels, then the means; None where absent)."""
    means = statistics.per_class()
    keys = ['accuracy', 'top1', 'top2to5', 'entropy'] + [f'set_size_{p:g}' for p in statistics.top_ps] + [
        'clamped_gdkd', 'clamped_dkd']
    header = ['class', 'pixels', 'accuracy', 'top-1 prob', 'top-2..5 mass', 'entropy (nats)'] + [
        f'top-{p:g} set size' for p in statistics.top_ps] + ['GDKD mass < eps', 'DKD mass < eps']
    rows = []
    for index, name in enumerate(class_names):
        values = [float(means[key][index]) for key in keys]
        rows.append([name, int(means['pixels'][index])] + [None if value != value else value for value in values])
    return header, rows
