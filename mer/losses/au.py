"""AU loss: smooth class-weighted BCE on frame-level AU logits against intensity-weighted targets.

Most AUs are absent from most clips, so plain BCE learns "never". Each AU's positives are up-weighted
by a smoothed, damped and clipped ratio of negatives to positives in the training split:

    pos_weight_k = clip( ((N - n_k + a) / (n_k + a)) ^ rho, 1, max_weight )

with n_k the training clips showing AU k, N all training clips, a = 1 (Laplace smoothing: an AU
seen once does not get a weight of N), rho = 0.5 (square-root damping: rare AUs are helped without
their few samples dominating), max_weight = 10. Raw inverse frequency (rho = 1, a = 0) explodes for
rare AUs and is infinite for unseen ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


def smooth_pos_weights(clip_aus: np.ndarray, *, smoothing: float = 1.0, power: float = 0.5, max_weight: float = 10.0) -> Tensor:
    """(N, K) 0/1 clip AU targets of the training split -> (K,) positive weights."""
    clip_aus = np.asarray(clip_aus, dtype=np.float64) > 0.5
    n = clip_aus.shape[0]
    positives = clip_aus.sum(axis=0)
    ratio = (n - positives + smoothing) / (positives + smoothing)
    return torch.as_tensor(np.clip(ratio**power, 1.0, max_weight), dtype=torch.float32)


class FrameAULoss(nn.Module):
    """BCE with logits over (B, T, K); ``pos_weight`` (K,) up-weights each AU's positives."""

    def __init__(self, pos_weight: Tensor | Sequence[float] | None = None) -> None:
        super().__init__()
        self.register_buffer("pos_weight", None if pos_weight is None else torch.as_tensor(pos_weight, dtype=torch.float32))

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), target.float(), pos_weight=self.pos_weight)
