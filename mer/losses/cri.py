"""CRI: the coupling-regulation-imbalance loss (Xu et al., arXiv 2205.12117), as docs/losses.md derives it.

    z'  = s * cos - s * m_y * onehot(y)           LDAM: margins m_j ~ n_j^(-1/4) for quantity imbalance
    p_t = softmax(z')_y
    CRI = w_y * [ (1 - p_t)^gamma * (-log p_t)    focal: regulates attention by difficulty
                  + epsilon * (1 - p_t)^(gamma+1) ]  correction (Poly-1 form): epsilon > 0 keeps the pull of
                                                    hard samples, epsilon in [-1, 0) eases it (outliers)

At the limits of its coupling weights it is its parts: epsilon = 0, gamma = 0 gives LDAM;
epsilon = 0, max_m = 0 gives focal loss on the scaled cosine logits; all three 0 gives cross-entropy.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

from mer.losses import LOSSES, EmotionLoss
from mer.losses.classification import LDAMLoss, weighted_mean


@LOSSES.register("cri")
class CRILoss(EmotionLoss):
    needs_cosine_classifier = True

    def __init__(
        self, class_counts: Sequence[int], gamma: float = 1.0, epsilon: float = 1.0, max_m: float = 0.5, s: float = 30.0
    ) -> None:
        super().__init__(class_counts)
        self.gamma, self.epsilon = float(gamma), float(epsilon)
        self.ldam = LDAMLoss(class_counts, max_m=max_m, s=s)  # holds the margins
        self.scale = self.ldam.scale

    def per_sample(self, logits: Tensor, target: Tensor) -> Tensor:
        """The unweighted CRI of each sample (B,)."""
        z = self.ldam.margin_logits(logits.float(), target)
        log_p = F.log_softmax(z, dim=1).gather(1, target[:, None]).squeeze(1)  # log p_t, stable for extreme logits
        q = (1.0 - log_p.exp()).clamp_min(0.0)  # 1 - p_t
        return q.pow(self.gamma) * (-log_p) + self.epsilon * q.pow(self.gamma + 1.0)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return weighted_mean(self.per_sample(logits, target), target, self._weight(logits.float()))
