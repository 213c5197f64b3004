"""Clip transforms built from torchvision.transforms.v2.

Frames arrive as a uint8 video tensor (T, C, H, W); v2 draws one set of random parameters per call,
so every frame of a clip gets the same crop, flip and colour change, which keeps the faint
frame-to-frame motion of a micro-expression intact. The output is float (T, C, H, W), normalised;
the dataset puts channels first: (C, T, H, W).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

# Kinetics statistics, as pytorchvideo and torchvision video models expect.
MEAN = (0.45, 0.45, 0.45)
STD = (0.225, 0.225, 0.225)


def build_transform(
    train: bool,
    *,
    size: int = 112,
    resize: int | None = None,
    crop_scale: Sequence[float] = (0.8, 1.0),
    flip: bool = True,
    color_jitter: float = 0.1,
    rotation: float = 0.0,
    mean: Sequence[float] = MEAN,
    std: Sequence[float] = STD,
) -> v2.Compose:
    """Train or eval pipeline: (T, C, H, W) uint8 -> (T, C, size, size) float normalised.

    ``resize`` (default ``size``) is the shorter side before cropping; train crops at random
    (``crop_scale`` of the area), eval takes the centre.
    """
    steps: list[v2.Transform] = [v2.Resize(resize or size, antialias=True)]
    if train:
        steps.append(v2.RandomResizedCrop(size, scale=tuple(crop_scale), ratio=(0.9, 1.1), antialias=True))
        if flip:
            steps.append(v2.RandomHorizontalFlip())
        if rotation:
            steps.append(v2.RandomRotation(rotation))
        if color_jitter:
            steps.append(v2.ColorJitter(brightness=color_jitter, contrast=color_jitter))
    else:
        steps.append(v2.CenterCrop(size))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(mean), std=list(std))]
    return v2.Compose(steps)


def as_video(frames) -> tv_tensors.Video:
    """uint8 ndarray (T, H, W, 3) -> video tensor (T, 3, H, W) that v2 transforms treat as one clip."""
    return tv_tensors.Video(torch.from_numpy(frames).permute(0, 3, 1, 2))
