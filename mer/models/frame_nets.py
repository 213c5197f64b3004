"""2D networks applied frame by frame: a small CNN for flow inputs, and the field's apex-flow
models, STSTNet and OFF-ApexNet, written from their papers.

``frame_cnn`` (ours): a VGG-style stack of 3x3 convolutions with batch norm, two 2x2 poolings,
widths (32, 32 | 64, 64 | 128): (B, 3, T, S, S) -> (B, 128, T, S/4, S/4). On onset -> apex flow it
sees what a 3D network sees of a micro-expression at a fraction of the cost (docs/results.md),
since the expression is in the flow's spatial pattern, not in its timing.

Both were designed for one flow image, onset -> apex, at 28 x 28 px, and trained from scratch on
the MEGC 2019 composite. Here each runs on every frame of the clip it is given (a 2D network
applied frame by frame), so the usual input is the keyframe sampler with two frames, onset and
apex (``experiment=ststnet`` / ``experiment=off_apexnet``): the first frame is the reference (its
flow is zero), the second carries the expression, and MERNet's attention pools the two. Longer
clips work too (a flow per sampled frame).

    clip (B, 3, T, H, W): u, v and strain (flow_strain) or |flow| (flow) -> feature map (B, C, T, h, w)

STSTNet (Liong, See, Wong, Phan 2019, "Shallow Triple Stream Three-dimensional CNN (STSTNet) for
Micro-expression Recognition"): the three input channels (optical strain, horizontal and vertical
flow) go through three parallel 3x3 convolutions of 3, 5 and 8 filters, each with ReLU and a 3x3
max pooling of stride 3 ("same" padding); the 16 maps are concatenated, average-pooled 2x2 and
flattened into the classifier: at 28 px, 16 x 5 x 5 = 400 features. Batch normalisation after each
convolution (as its public implementations add) keeps training from scratch stable.

OFF-ApexNet (Gan, Liong, Yau, Huang, Tan 2019, "OFF-ApexNet on micro-expression recognition
system"): the horizontal and the vertical flow each go through their own stream of two 5x5
convolutions (6 then 16 filters, ReLU, 2x2 max pooling after each); the two streams are
concatenated and flattened into two fully connected layers of 1024 units, then the classifier.
Here the fully connected layers are the backbone's last part: its map is (B, 1024, T, 1, 1).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mer.models.backbones import BACKBONES, Backbone, GroupNorm3d

# "group": per-sample statistics, for several processes without SyncBatchNorm (as x3d's norm=group);
# GroupNorm3d is nn.GroupNorm with BatchNorm's constructor, and GroupNorm takes 2D maps as well.
FRAME_NORMS = {"batch": nn.BatchNorm2d, "group": GroupNorm3d}


def frame_norm(norm: str, channels: int) -> nn.Module:
    """The norm layer ``norm`` ("batch" or "group") over ``channels`` 2D maps."""
    if norm not in FRAME_NORMS:
        raise ValueError(f"unknown norm {norm!r}; valid choices: {', '.join(FRAME_NORMS)}")
    return FRAME_NORMS[norm](channels)


class FrameWise(Backbone):
    """A 2D network on every frame: (B, C, T, H, W) -> (B*T, C, H, W) -> net -> (B, C', T, h, w)."""

    def forward(self, clip: Tensor) -> Tensor:
        b, c, t, h, w = clip.shape
        frames = clip.transpose(1, 2).reshape(b * t, c, h, w)  # (B, C, T, H, W) -> (B*T, C, H, W)
        maps = self.frame(frames)  # (B*T, C', h, w)
        return maps.reshape(b, t, *maps.shape[1:]).transpose(1, 2).contiguous()  # -> (B, C', T, h, w)

    def frame(self, frames: Tensor) -> Tensor:  # pragma: no cover - every subclass overrides
        raise NotImplementedError


class FrameCNN(FrameWise):
    def __init__(
        self, *, widths: tuple[int, ...] = (32, 32, 64, 64, 128), pool_after: tuple[int, ...] = (1, 3), norm: str = "batch"
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for i, width in enumerate(widths):
            layers += [
                nn.Conv2d(channels, width, kernel_size=3, padding=1, bias=False),
                frame_norm(norm, width),
                nn.ReLU(inplace=True),
            ]
            if i in pool_after:
                layers.append(nn.MaxPool2d(2))
            channels = width
        self.layers = nn.Sequential(*layers)
        self.out_channels = channels

    def frame(self, frames: Tensor) -> Tensor:
        return self.layers(frames)  # (N, 3, S, S) -> (N, 128, S/4, S/4)


class STSTNet(FrameWise):
    def __init__(self, *, filters: tuple[int, ...] = (3, 5, 8), in_channels: int = 3, norm: str = "batch") -> None:
        super().__init__()
        self.streams = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(in_channels, n, kernel_size=3, padding=1),
                frame_norm(norm, n),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=3, padding=1, ceil_mode=True),  # 28 -> 10 ("same")
            )
            for n in filters
        )
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2, ceil_mode=True)  # 10 -> 5
        self.out_channels = sum(filters)

    def frame(self, frames: Tensor) -> Tensor:
        return self.pool(torch.cat([stream(frames) for stream in self.streams], dim=1))  # (N, 16, H/6, W/6)


class OFFApexNet(FrameWise):
    def __init__(self, *, size: int = 28, hidden: int = 1024, dropout: float = 0.5) -> None:
        super().__init__()

        def stream() -> nn.Sequential:  # one flow component: (N, 1, S, S) -> (N, 16, S/4, S/4)
            return nn.Sequential(
                nn.Conv2d(1, 6, kernel_size=5, padding=2),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
                nn.Conv2d(6, 16, kernel_size=5, padding=2),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            )

        self.horizontal, self.vertical = stream(), stream()
        side = size // 4
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * side * side, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
        )
        self.size = size
        self.out_channels = hidden

    def frame(self, frames: Tensor) -> Tensor:
        if frames.shape[-2:] != (self.size, self.size):
            raise ValueError(
                f"off_apexnet was built for {self.size} x {self.size} flow images, got {tuple(frames.shape[-2:])}; "
                "set data.crop_size to match (experiment=off_apexnet does)"
            )
        streams = torch.cat([self.horizontal(frames[:, :1]), self.vertical(frames[:, 1:2])], dim=1)  # u, v: (N, 32, S/4, S/4)
        return self.fc(streams)[:, :, None, None]  # (N, 1024, 1, 1)


@BACKBONES.register("frame_cnn")
def frame_cnn(
    *,
    num_frames: int,
    crop_size: int,
    widths: tuple[int, ...] = (32, 32, 64, 64, 128),
    pool_after: tuple[int, ...] = (1, 3),
    norm: str = "batch",
) -> Backbone:
    """A small VGG-style CNN per frame: (B, 3, T, S, S) -> (B, 128, T, S/4, S/4); ``norm``: "batch" or "group"."""
    return FrameCNN(widths=tuple(widths), pool_after=tuple(pool_after), norm=norm)


@BACKBONES.register("ststnet")
def ststnet(*, num_frames: int, crop_size: int, filters: tuple[int, ...] = (3, 5, 8), norm: str = "batch") -> Backbone:
    """STSTNet: (B, 3, T, S, S) -> (B, 16, T, S/6, S/6), e.g. 28 px -> 5 x 5 (from the paper, above);
    ``norm``: "batch" or "group"."""
    return STSTNet(filters=tuple(filters), norm=norm)


@BACKBONES.register("off_apexnet")
def off_apexnet(*, num_frames: int, crop_size: int, hidden: int = 1024, dropout: float = 0.5) -> Backbone:
    """OFF-ApexNet: (B, 3, T, S, S) -> (B, 1024, T, 1, 1); uses u and v (channels 0 and 1) at S x S."""
    return OFFApexNet(size=crop_size, hidden=hidden, dropout=dropout)
