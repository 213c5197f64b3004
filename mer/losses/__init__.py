"""Losses: emotion losses by name (``loss=<name>``) and the AU loss.

emotion_loss = build_emotion_loss("ce", class_counts=counts)
loss = emotion_loss(logits, target)            # logits (B, E), target (B,)
emotion_loss.set_class_weight(weights)         # the staged schedule moves these over epochs
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from mer.registry import Registry

LOSSES: Registry[Callable[..., EmotionLoss]] = Registry("loss")


class EmotionLoss(nn.Module):
    """Base: holds the per-class weights the schedule sets (None = instance-balanced).

    A loss that needs a cosine classifier (LDAM, CRI) sets ``needs_cosine_classifier`` and its
    ``scale`` s: the model then outputs s * cos(feature, class weight) as logits.
    """

    needs_cosine_classifier = False
    scale: float = 1.0

    def __init__(self, class_counts: Sequence[int]) -> None:
        super().__init__()
        self.register_buffer("class_counts", torch.as_tensor(list(class_counts), dtype=torch.float32))
        self.class_weight: Tensor | None = None

    def set_class_weight(self, weight: Tensor | None) -> None:
        self.class_weight = None if weight is None else weight.to(self.class_counts.device, torch.float32)

    def _weight(self, logits: Tensor) -> Tensor | None:
        return None if self.class_weight is None else self.class_weight.to(logits.device, logits.dtype)


def list_losses() -> list[str]:
    return LOSSES.names()


def build_emotion_loss(name: str, *, class_counts: Sequence[int], **options) -> EmotionLoss:
    return LOSSES.build(name, class_counts=class_counts, **options)


def class_balanced_weights(class_counts: Sequence[int], beta: float = 0.9999) -> Tensor:
    """Cui et al. 2019: weight_j proportional to (1 - beta) / (1 - beta^n_j), normalised to sum to E.

    Classes with no samples get weight 0.
    """
    counts = torch.as_tensor(list(class_counts), dtype=torch.float64)
    effective = 1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64), counts)
    weights = torch.where(counts > 0, (1.0 - beta) / effective.clamp_min(1e-12), torch.zeros_like(counts))
    weights = weights / weights.sum() * (counts > 0).sum()
    return weights.float()


# register the losses
from mer.losses import classification, cri  # noqa: E402,F401
