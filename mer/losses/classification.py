"""Emotion losses: cross-entropy, focal, class-balanced cross-entropy and LDAM.

All take logits (B, E) and integer targets (B,), average over the batch, and honour the class
weights a schedule sets (``set_class_weight``) as a per-sample weight w_y, normalised by the
batch's total weight (as ``F.cross_entropy`` does with ``weight=``). Under torchrun the batch is
the global one: each process divides by the mean over processes of their weight totals, so the
gradients DDP averages are those of one process with the whole batch (dividing by its own share's
total, as ``F.cross_entropy`` would, gives each process's samples another weight).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from mer import distributed as dist
from mer.losses import LOSSES, EmotionLoss, class_balanced_weights


def batch_mean(weighted: Tensor, sample_weight: Tensor | None) -> Tensor:
    """sum_i w_i l_i / sum_i w_i over the global batch, from ``weighted`` = w_i l_i (B,) and w_i (B,);
    the plain mean without weights (every process has the same number of samples)."""
    if sample_weight is None:
        return weighted.mean()
    total = sample_weight.sum().detach()
    if dist.world_size() > 1:  # the mean of the processes' totals: DDP averages their gradients
        total = total.clone()
        torch.distributed.all_reduce(total)
        total = total / dist.world_size()
    return weighted.sum() / total.clamp_min(1e-12)


def weighted_mean(per_sample: Tensor, target: Tensor, weight: Tensor | None) -> Tensor:
    """sum_i w_{y_i} l_i / sum_i w_{y_i} (over the global batch); the plain mean without weights."""
    if weight is None:
        return per_sample.mean()
    w = weight[target]
    return batch_mean(w * per_sample, w)


def weighted_cross_entropy(logits: Tensor, target: Tensor, weight: Tensor | None, **kw) -> Tensor:
    """``F.cross_entropy(logits, target, weight=weight, **kw)``, normalised over the global batch."""
    per_sample = F.cross_entropy(logits, target, weight=weight, reduction="none", **kw)  # already w_{y_i}-weighted
    return batch_mean(per_sample, None if weight is None else weight[target])


def ldam_margins(class_counts: Sequence[float] | Tensor, max_m: float = 0.5) -> Tensor:
    """Cao et al. 2019: m_j proportional to n_j^(-1/4), rescaled so the largest margin is ``max_m``.

    A class with no training samples gets the largest margin.
    """
    counts = torch.as_tensor(class_counts, dtype=torch.float64).clamp_min(1.0)
    m = counts.pow(-0.25)
    return (m * (max_m / m.max())).float()


@LOSSES.register("ce")
class CrossEntropy(EmotionLoss):
    """Cross-entropy, class-weighted when the schedule sets weights; optional label smoothing."""

    def __init__(self, class_counts: Sequence[int], label_smoothing: float = 0.0) -> None:
        super().__init__(class_counts)
        self.label_smoothing = label_smoothing

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        logits = logits.float()
        return weighted_cross_entropy(logits, target, self._weight(logits), label_smoothing=self.label_smoothing)


@LOSSES.register("focal")
class FocalLoss(EmotionLoss):
    """Lin et al. 2017, multi-class: -(1 - p_t)^gamma log p_t."""

    def __init__(self, class_counts: Sequence[int], gamma: float = 2.0) -> None:
        super().__init__(class_counts)
        self.gamma = gamma

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        log_p = F.log_softmax(logits.float(), dim=1).gather(1, target[:, None]).squeeze(1)  # log p_t
        per_sample = -((1.0 - log_p.exp()).clamp_min(0.0) ** self.gamma) * log_p
        return weighted_mean(per_sample, target, self._weight(logits.float()))


@LOSSES.register("cb")
class ClassBalancedCE(EmotionLoss):
    """Cui et al. 2019: cross-entropy weighted by the inverse effective number, (1 - beta) / (1 - beta^n_j).

    The weights are fixed from the training counts; a schedule's weights, when set, replace them.
    """

    def __init__(self, class_counts: Sequence[int], beta: float = 0.9999) -> None:
        super().__init__(class_counts)
        self.register_buffer("cb_weight", class_balanced_weights(class_counts, beta))

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        weight = self._weight(logits.float())
        weight = self.cb_weight.to(logits.device) if weight is None else weight
        return weighted_cross_entropy(logits.float(), target, weight)


@LOSSES.register("ldam")
class LDAMLoss(EmotionLoss):
    """Cao et al. 2019, Label-Distribution-Aware Margin loss.

    The logits are s * cos(feature, class weight) from a cosine classifier; the margin s * m_y is
    subtracted from the true class's logit only, then cross-entropy:
    ``CE(s * (cos - m_y * onehot(y)), y)``.
    """

    needs_cosine_classifier = True

    def __init__(self, class_counts: Sequence[int], max_m: float = 0.5, s: float = 30.0) -> None:
        super().__init__(class_counts)
        self.scale = float(s)
        self.register_buffer("margins", ldam_margins(class_counts, max_m))

    def margin_logits(self, logits: Tensor, target: Tensor) -> Tensor:
        """(B, E) logits with s * m_y taken from each sample's true class."""
        margin = torch.zeros_like(logits).scatter_(1, target[:, None], self.margins.to(logits)[target][:, None])
        return logits - self.scale * margin

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        logits = logits.float()
        return weighted_cross_entropy(self.margin_logits(logits, target), target, self._weight(logits))
