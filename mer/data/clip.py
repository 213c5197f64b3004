"""The one clip path: decoded frames -> the tensor a model takes, the same for every command.

    spec = ClipSpec.from_config(cfg)                 # or ClipSpec.from_dict(checkpoint["input"])
    transform = ClipTransform(spec, train=False)     # training builds train=True with cfg.data.augment
    clip = transform(frames)                         # uint8 (T, H, W, 3) -> float (3, T, S, S)

Training, validation, ``mer.evaluate``, ``mer.score`` / ``mer.predict`` and the exported models'
callers all build clips with this class from the spec their checkpoint records, so a model is
always scored on the pixels it was evaluated on. The steps:

    frames (T, H, W, 3) uint8, a face crop (annotated clips) or a cut of a recording (scoring)
      -> resize: shorter side to ``resize`` (default: ``size``)
      -> representation (3 channels per frame; the first frame is the reference, the neutral
         context or the onset for the keyframe sampler):
           frames       RGB
           diff         RGB minus the reference's RGB
           flow         u, v, |(u, v)|: optical flow from the reference, head motion removed
           flow_strain  u, v, optical strain
      -> spatial: train: a random resized crop and a horizontal flip (a flipped flow has u negated,
         so it stays a flow); eval: the centre crop of ``size``
      -> per-channel normalisation (constants below) -> (3, T, size, size)

Flow is computed on the resized frames before any augmentation (an augmented crop then moves and
scales the flow field with the frames), at ``motion.size`` pixels when set (e.g. 112 for a flow
model that takes 28-px inputs), and its unit is a pixel of a 112-px face whatever the resolution,
so a model sees the same numbers for the same motion at any size. Photometric jitter applies to
``frames`` and ``diff`` only: it does not change a flow.

Horizontal flips keep every target valid: AU targets are side-less (AU12 whether L12 or R12), and
an emotion does not change sides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torchvision.transforms.v2 import functional as TF

from mer.data.faces import FACE_MARGIN

# Per-channel normalisation of each representation: (x - mean) / std.
# frames and diff: Kinetics statistics (as pytorchvideo and torchvision video models expect) on [0, 1].
# flow: pixels of a 112-px face; strain: unitless. Measured on the synthetic set with DIS, head
# motion removed: u, v std 0.25-0.35 px, |flow| 0.29 +- 0.31 px, strain 0.041 +- 0.053.
FRAMES_MEAN, FRAMES_STD = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)
NORMALISATION = {
    "frames": (FRAMES_MEAN, FRAMES_STD),
    "diff": ((0.0, 0.0, 0.0), FRAMES_STD),
    "flow": ((0.0, 0.0, 0.3), (0.3, 0.3, 0.3)),
    "flow_strain": ((0.0, 0.0, 0.04), (0.3, 0.3, 0.05)),
}
REPRESENTATIONS = tuple(NORMALISATION)
FLOW_REPRESENTATIONS = ("flow", "flow_strain")
FLOW_UNIT_SIZE = 112  # flow values are pixels of a face this many pixels wide


def check_representation(name: str) -> str:
    if name not in NORMALISATION:
        raise ValueError(f"unknown input representation {name!r}; valid choices: {', '.join(REPRESENTATIONS)}")
    return name


@dataclass(frozen=True)
class MotionSpec:
    """How flow is computed (``mer.data.motion``): method, its options, head-motion removal, size."""

    method: str = "farneback"
    head_motion: str = "affine"  # none | similarity | affine
    options: dict = field(default_factory=dict)  # None (as a config's null) reads as {}: the method's defaults
    size: int | None = None  # side the flow is computed at; None: the resized frames' side

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", dict(self.options or {}))

    def key(self) -> dict:
        """What a cached flow depends on."""
        return asdict(self)


@dataclass(frozen=True)
class ClipSpec:
    """What a model takes: frames per clip, side, representation, and how frames become it.

    Stored in every checkpoint (``checkpoint["input"]``), so evaluation and scoring rebuild the
    exact preprocessing of training.
    """

    num_frames: int
    size: int  # the side of the model's input
    resize: int | None = None  # shorter side before cropping; None: ``size``
    representation: str = "frames"
    motion: MotionSpec = field(default_factory=MotionSpec)
    face_margin: float = FACE_MARGIN  # the face crop's square around a detected face (raw recordings, scoring)
    channels: int = 3

    def __post_init__(self) -> None:
        check_representation(self.representation)
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.size < 1:
            raise ValueError(f"data.crop_size must be >= 1, got {self.size}")

    @property
    def frame_side(self) -> int:
        """The side the frames are brought to before cropping (and the face crop's output side)."""
        return int(self.resize or self.size)

    @property
    def source_side(self) -> int:
        """The side a face crop (training on raw recordings, scoring) is cut at: the frames' side, or
        the flow's when it is computed at a higher resolution than the model sees."""
        return max(self.frame_side, int(self.motion.size or 0)) if self.uses_flow else self.frame_side

    @property
    def uses_flow(self) -> bool:
        return self.representation in FLOW_REPRESENTATIONS

    @classmethod
    def from_config(cls, cfg) -> ClipSpec:
        """From a run's config (its ``data`` and ``clip_sampler`` groups)."""
        data = cfg.data
        motion = _plain(data.get("motion")) or {}
        motion.pop("cache", None)
        face = data.get("face_crop") or {}
        return cls(
            num_frames=int(cfg.clip_sampler.num_frames),
            size=int(data.crop_size),
            resize=data.get("resize"),
            representation=str(data.get("representation") or "frames"),
            motion=MotionSpec(**{k: v for k, v in motion.items() if v is not None or k == "size"}),
            face_margin=float(face.get("margin") or FACE_MARGIN),
        )

    @classmethod
    def from_dict(cls, spec: dict) -> ClipSpec:
        """From a checkpoint's ``input`` (a plain dict: checkpoints hold no classes)."""
        spec = dict(spec)
        motion = MotionSpec(**dict(spec.pop("motion", None) or {}))
        return cls(**{k: v for k, v in spec.items() if k in {f for f in cls.__dataclass_fields__}}, motion=motion)

    def to_dict(self) -> dict:
        return asdict(self)


def _plain(node) -> dict:
    if OmegaConf.is_config(node):
        return OmegaConf.to_container(node, resolve=True)
    return dict(node or {})


# ------------------------------------------------------------------------------------------ flows


def resize_frames(frames: np.ndarray, side: int) -> np.ndarray:
    """uint8 (T, H, W, 3) -> shorter side ``side`` (area interpolation down, linear up)."""
    import cv2

    t, h, w = frames.shape[:3]
    scale = side / min(h, w)
    if scale == 1.0:
        return frames
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, new, interpolation=interpolation) for f in frames])


def compute_clip_flows(frames: np.ndarray, spec: ClipSpec) -> np.ndarray:
    """float32 (T, h, w, 2) flows of a clip from its first frame, in pixels of a 112-px face, at
    ``spec.motion.size`` (or the frames' side after ``resize``). ``frames`` as decoded or cropped
    (at ``spec.source_side``): they are resized here, once.

    Rounded to float16 precision (about 1e-3 px), the precision the flow cache keeps: a clip gives
    the same numbers whether its flows were computed now or read from the cache.
    """
    from mer.data.motion import clip_flows

    side = spec.motion.size or spec.frame_side
    small = resize_frames(frames, side)
    m = spec.motion
    flows = clip_flows(small, reference=0, method=m.method, head_motion=m.head_motion, options=dict(m.options))
    flows = flows * np.float32(FLOW_UNIT_SIZE / min(small.shape[1:3]))
    return flows.astype(np.float16).astype(np.float32)


# ------------------------------------------------------------------------------------ the transform


class ClipTransform:
    """uint8 frames (T, H, W, 3) [+ their flows] -> float clip (3, T, size, size); see the module doc.

    ``augment`` (training only): ``crop_scale`` (area share of the random crop), ``flip``,
    ``color_jitter`` (brightness and contrast, frames and diff only).
    """

    def __init__(self, spec: ClipSpec, *, train: bool = False, augment: dict | None = None) -> None:
        self.spec = spec
        self.train = train
        augment = dict(augment or {}) if train else {}
        if augment.pop("enabled", True) is False:
            augment = {}
        self.crop_scale = tuple(augment.pop("crop_scale", (1.0, 1.0)))
        self.flip = bool(augment.pop("flip", False))
        self.color_jitter = float(augment.pop("color_jitter", 0.0) or 0.0)
        rotation = float(augment.pop("rotation", 0.0) or 0.0)
        if rotation:
            raise ValueError("data.augment.rotation is not supported: rotate the frames before mer, or set it to 0")
        if augment:
            raise ValueError(
                f"unknown data.augment option(s) {sorted(augment)}; valid: enabled, crop_scale, flip, color_jitter, rotation"
            )
        mean, std = NORMALISATION[spec.representation]
        self.mean = torch.tensor(mean).view(3, 1, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1, 1)

    def __call__(self, frames: np.ndarray | None = None, flows: np.ndarray | None = None) -> torch.Tensor:
        """``frames`` uint8 (T, H, W, 3); for a flow representation, ``flows`` (T, h, w, 2) as
        :func:`compute_clip_flows` gives them may stand in for the frames (computed from them if
        not given)."""
        spec = self.spec
        if spec.uses_flow:
            if flows is None:
                flows = compute_clip_flows(np.asarray(frames), spec)
            h, w = flows.shape[1:3]  # the resized frames' size: the shorter side frame_side, the flows' aspect
            hw = (round(h * spec.frame_side / min(h, w)), round(w * spec.frame_side / min(h, w)))
            x = self._flow_channels(flows, hw)  # (3, T, H, W)
        else:
            frames = resize_frames(np.asarray(frames), spec.frame_side)
            x = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float().div_(255.0)  # (3, T, H, W)
            if self.color_jitter:
                x = self._jitter(x)
            if spec.representation == "diff":
                x = x - x[:, :1]
        x = self._spatial(x)
        return (x - self.mean) / self.std

    def _flow_channels(self, flows: np.ndarray, hw: tuple[int, int]) -> torch.Tensor:
        """(T, h, w, 2) flows -> (3, T, H, W): u, v and |flow| or strain, at the frames' size."""
        from mer.data.motion import optical_strain

        f = torch.from_numpy(np.ascontiguousarray(flows, dtype=np.float32)).permute(3, 0, 1, 2)  # (2, T, h, w)
        if tuple(f.shape[2:]) != tuple(hw):
            f = F.interpolate(f, size=hw, mode="bilinear", align_corners=False)
        if self.spec.representation == "flow":
            third = torch.linalg.vector_norm(f, dim=0, keepdim=True)
        else:  # strain is computed on the flow as resized: its unit (px / px) does not depend on the size
            px = f.permute(1, 2, 3, 0).numpy() * (min(hw) / FLOW_UNIT_SIZE)
            third = torch.from_numpy(np.stack([optical_strain(p) for p in px]))[None]
        return torch.cat([f, third], dim=0)

    def _jitter(self, x: torch.Tensor) -> torch.Tensor:
        """One brightness and contrast change for the whole clip (the faint motion stays intact)."""
        b = 1.0 + (torch.rand(()) * 2 - 1) * self.color_jitter
        c = 1.0 + (torch.rand(()) * 2 - 1) * self.color_jitter
        x = x * b
        mean = x.mean(dim=(0, 2, 3), keepdim=True).mean()  # the clip's grey level
        return ((x - mean) * c + mean).clamp_(0.0, 1.0)

    def _spatial(self, x: torch.Tensor) -> torch.Tensor:
        """(3, T, H, W) -> (3, T, size, size): random resized crop + flip (train), centre crop (eval)."""
        size = self.spec.size
        h, w = x.shape[2:]
        if not self.train:
            return TF.center_crop(x, [size, size])
        top, left, ch, cw = _crop_box(h, w, self.crop_scale)
        x = TF.resized_crop(x, top, left, ch, cw, [size, size], antialias=True)
        flow = self.spec.uses_flow
        if flow:  # displacements grow with the zoom: a crop of cw columns shown on w of them
            x[0] *= w / cw
            x[1] *= h / ch
            if self.spec.representation == "flow":
                x[2] = torch.linalg.vector_norm(x[:2], dim=0)
        if self.flip and torch.rand(()) < 0.5:
            x = x.flip(-1)
            if flow:
                x[0] = -x[0]
        return x


def _crop_box(h: int, w: int, scale: Sequence[float], ratio=(0.9, 1.1)) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a random crop with ``scale`` of the area and aspect in ``ratio``
    (torchvision's RandomResizedCrop rule, drawn from torch's generator)."""
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * float(torch.empty(()).uniform_(scale[0], scale[1]))
        aspect = math.exp(float(torch.empty(()).uniform_(*log_ratio)))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(torch.randint(0, h - ch + 1, ()))
            left = int(torch.randint(0, w - cw + 1, ()))
            return top, left, ch, cw
    side = min(h, w)
    return (h - side) // 2, (w - side) // 2, side, side
