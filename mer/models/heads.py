"""Heads on per-frame features: a frame-level AU head shared with an attention-gated FER head.

    feature map (B, C, T', H', W') --GridPool, frame_features--> f (B, T, D)
    FrameAUHead:            h_t = MLP(f_t)                       hidden state (B, T, H)
    AttentionGatedFERHead:  g_t = sigmoid(W_g [f_t; h_t])        what FER takes from the AU branch
                            u_t = f_t + g_t * P(h_t)             (B, T, D)
                            a   = softmax_t(v^T tanh(W_a u_t))   temporal attention (B, T)
                            z   = sum_t a_t u_t                  clip embedding (B, D) -> emotion logits
                            k_t = sigmoid(W_k [h_t; z])          what the AU branch takes from FER context
                            h'_t = h_t + k_t * Q(z)              -> AU logits per frame (B, T, K)

With ``gate=False`` the gates become plain concatenation (u_t = W_c [f_t; h_t], h'_t = W_c' [h_t; z]);
without the AU head the FER head pools f directly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class GridPool(nn.Module):
    """Spatial pooling to a ``grid`` x ``grid`` layout: (B, C, T', H', W') -> (B, C * grid^2, T').

    ``grid=1`` is global average pooling. A grid > 1 keeps where on the face a feature is: with
    ``input="diff"`` the appearance that tells a brow from a lip is gone, and the place is what is
    left. Each cell is the average of the map area it covers (adaptive average pooling), done as
    one product with a pooling matrix built for the map's size, so tracing and ONNX see no
    shape-dependent kernels.
    """

    def __init__(self, grid: int = 1) -> None:
        super().__init__()
        self.grid = int(grid)
        self.register_buffer("matrix", None, persistent=False)  # (g*g, H'*W'), built on first use

    @staticmethod
    def pooling_matrix(h: int, w: int, grid: int) -> Tensor:
        basis = torch.eye(h * w).view(h * w, 1, h, w)
        return F.adaptive_avg_pool2d(basis, grid).view(h * w, grid * grid).t().contiguous()

    def forward(self, fmap: Tensor) -> Tensor:
        fmap = fmap.float()
        if self.grid == 1:
            return fmap.mean(dim=(3, 4))  # (B, C, T')
        h, w = int(fmap.shape[3]), int(fmap.shape[4])
        if self.matrix is None or self.matrix.shape[1] != h * w:
            self.matrix = self.pooling_matrix(h, w, self.grid).to(fmap.device)
        cells = fmap.flatten(3) @ self.matrix.t()  # (B, C, T', H'*W') -> (B, C, T', g*g)
        return cells.permute(0, 1, 3, 2).flatten(1, 2)  # (B, C * g*g, T')


def frame_features(pooled: Tensor, num_frames: int) -> Tensor:
    """Linear temporal resize back to the sampled frames: (B, D, T') -> (B, D, T) -> (B, T, D)."""
    if pooled.shape[-1] != num_frames:
        pooled = F.interpolate(pooled, size=num_frames, mode="linear", align_corners=True)
    return pooled.transpose(1, 2).contiguous()


class CosineClassifier(nn.Module):
    """Logits s * cos(feature, class weight), LDAM's normalised classifier; in [-s, s]."""

    def __init__(self, in_features: int, num_classes: int, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = float(scale)
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * (F.normalize(x, dim=-1) @ F.normalize(self.weight, dim=-1).t())


def build_classifier(kind: str, in_features: int, num_classes: int, scale: float = 1.0) -> nn.Module:
    if kind == "linear":
        return nn.Linear(in_features, num_classes)
    if kind == "cosine":
        return CosineClassifier(in_features, num_classes, scale)
    raise ValueError(f"unknown classifier {kind!r}; valid choices: cosine, linear")


class FrameAUHead(nn.Module):
    """Per-frame MLP: features (B, T, D) -> hidden state (B, T, H); ``logits`` maps hidden -> (B, T, K)."""

    def __init__(self, in_dim: int, hidden: int, num_aus: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout))
        self.logits = nn.Linear(hidden, num_aus)

    def forward(self, f: Tensor) -> tuple[Tensor, Tensor]:
        h = self.hidden(f)  # (B, T, H)
        return h, self.logits(h)


class AttentionGatedFERHead(nn.Module):
    """Gated exchange between the FER and AU branches, then temporal attention pooling."""

    def __init__(
        self,
        dim: int,
        au_hidden: int,
        num_classes: int,
        *,
        gate: bool = True,
        classifier: str = "linear",
        cosine_scale: float = 1.0,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.gate = gate
        if gate:
            self.gate_fer = nn.Linear(dim + au_hidden, dim)  # g_t = sigmoid(W_g [f_t; h_t])
            self.from_au = nn.Linear(au_hidden, dim)  # P
            self.gate_au = nn.Linear(au_hidden + dim, au_hidden)  # k_t = sigmoid(W_k [h_t; z])
            self.from_fer = nn.Linear(dim, au_hidden)  # Q
        else:
            self.concat_fer = nn.Linear(dim + au_hidden, dim)
            self.concat_au = nn.Linear(au_hidden + dim, au_hidden)
        self.attention = nn.Sequential(nn.Linear(dim, dim // 2), nn.Tanh(), nn.Linear(dim // 2, 1))
        self.dropout = nn.Dropout(dropout)
        self.classifier = build_classifier(classifier, dim, num_classes, cosine_scale)

    def fuse_fer(self, f: Tensor, h: Tensor) -> Tensor:
        """(B, T, D), (B, T, H) -> (B, T, D): what the FER branch keeps of the AU branch."""
        fh = torch.cat([f, h], dim=-1)
        if self.gate:
            return f + torch.sigmoid(self.gate_fer(fh)) * self.from_au(h)
        return self.concat_fer(fh)

    def fuse_au(self, h: Tensor, z: Tensor) -> Tensor:
        """(B, T, H), (B, D) -> (B, T, H): the AU hidden state informed by the clip's FER context."""
        zt = z.unsqueeze(1).expand(-1, h.shape[1], -1)
        hz = torch.cat([h, zt], dim=-1)
        if self.gate:
            return h + torch.sigmoid(self.gate_au(hz)) * self.from_fer(zt)
        return self.concat_au(hz)

    def pool(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """(B, T, D) -> clip embedding (B, D) and attention weights (B, T)."""
        attention = torch.softmax(self.attention(u).squeeze(-1), dim=1)
        return torch.einsum("bt,btd->bd", attention, u), attention

    def forward(self, f: Tensor, h: Tensor | None) -> dict[str, Tensor]:
        u = f if h is None else self.fuse_fer(f, h)
        z, attention = self.pool(u)
        out = {"emotion": self.classifier(self.dropout(z)), "attention": attention, "embedding": z}
        if h is not None:
            out["au_hidden"] = self.fuse_au(h, z)
        return out
