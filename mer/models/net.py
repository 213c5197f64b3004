"""MERNet: a spatiotemporal backbone, the frame-level AU head and the attention-gated FER head.

    clip (B, 3, T, H, W)
      -> backbone feature map (B, C, T', H', W') -> per-frame features (B, T, C) -> proj (B, T, D)
      -> FrameAUHead hidden (B, T, H) <-> AttentionGatedFERHead
      -> {"emotion": (B, E), "frame_aus": (B, T, K), "clip_aus": (B, K), "attention": (B, T)}

The clip is whatever representation the data pipeline built (``mer.data.clip``: frames, their
difference to the first frame, or the optical flow from it); the network does not care which.
"""

from __future__ import annotations

from torch import Tensor, nn

from mer.models.heads import AttentionGatedFERHead, FrameAUHead, GridPool, frame_features


class MERNet(nn.Module):
    def __init__(
        self,
        backbone: nn.Module,
        *,
        num_classes: int,
        num_aus: int,
        dim: int = 128,
        au_hidden: int = 64,
        au_head: bool = True,
        gate: bool = True,
        classifier: str = "linear",
        cosine_scale: float = 30.0,
        grid: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_aus = num_aus if au_head else 0
        self.pool = GridPool(grid)
        self.project = nn.Sequential(nn.Linear(backbone.out_channels * grid * grid, dim), nn.LayerNorm(dim), nn.GELU())
        self.au_head = FrameAUHead(dim, au_hidden, num_aus, dropout) if au_head else None
        self.fer_head = AttentionGatedFERHead(
            dim, au_hidden, num_classes, gate=gate, classifier=classifier, cosine_scale=cosine_scale, dropout=dropout
        )

    def forward(self, clip: Tensor) -> dict[str, Tensor]:
        num_frames = clip.shape[2]
        f = self.project(frame_features(self.pool(self.backbone(clip)), num_frames))  # (B, T, D)
        h = None
        if self.au_head is not None:
            h, _ = self.au_head(f)  # (B, T, H)
        out = self.fer_head(f, h)
        if self.au_head is not None:
            frame_aus = self.au_head.logits(out.pop("au_hidden"))  # (B, T, K)
            out["frame_aus"] = frame_aus
            out["clip_aus"] = frame_aus.max(dim=1).values  # (B, K): an AU is in the clip if in any frame
        return out


# The model config keys that are MERNet's own arguments; the rest (backbone, backbone_options,
# pretrained) choose and load the backbone.
HEAD_OPTIONS = ("dim", "au_hidden", "au_head", "gate", "classifier", "cosine_scale", "grid", "dropout")


def build_model(cfg, *, num_classes: int, num_aus: int, num_frames: int, crop_size: int) -> MERNet:
    """MERNet from the ``model`` config group (backbone name and options, head switches).

    Only the keys a config sets are passed on (a ``null`` keeps MERNet's default), so the defaults
    live in one place: the signatures of MERNet and of the backbone builders.
    """
    from mer.models.backbones import build_backbone, load_pretrained

    options = dict(cfg.get("backbone_options") or {})
    backbone = build_backbone(cfg.backbone, num_frames=num_frames, crop_size=crop_size, **options)
    if cfg.get("pretrained"):
        load_pretrained(backbone, cfg.pretrained)
    unknown = sorted(k for k in cfg if k not in HEAD_OPTIONS and k not in ("backbone", "backbone_options", "pretrained"))
    if unknown:
        valid = ", ".join(("backbone", "backbone_options", "pretrained", *HEAD_OPTIONS))
        raise ValueError(f"unknown model option(s) {', '.join(unknown)}; valid: {valid}")
    heads = {k: cfg.get(k) for k in HEAD_OPTIONS if cfg.get(k) is not None}
    return MERNet(backbone, num_classes=num_classes, num_aus=num_aus, **heads)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
