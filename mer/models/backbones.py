"""Spatiotemporal backbones: a clip in, a feature map out, chosen by name.

    backbone = build_backbone("x3d_tiny", num_frames=16, crop_size=112)
    fmap = backbone(clip)          # (B, 3, T, H, W) -> (B, backbone.out_channels, T', H', W')
    list_backbones("x3d*")         # ['x3d_s', 'x3d_tiny', 'x3d_xs']

Every backbone is headless: no global pooling, no classifier. The per-frame head downstream pools
space and resizes time back to T, so T' may be below T (but is >= 1) and the map keeps its spatial
layout. Weights are random (``weights=None``); pretrained ones come only from a local file through
:func:`load_pretrained`. Each module keeps the attribute names of the model it was cut from, so a
full pytorchvideo / torchvision checkpoint loads into it as is and only its head keys are left over.

Registered (the clips each runs on, and its map at 16x112x112 for a batch of B):

    name         source                                               clip (T x H x W)       map at 16x112x112
    x3d_tiny     pytorchvideo create_x3d, the CPU default (below)     any T; H, W >= 32 (1)  (B, 96, 16, 4, 4)
    x3d_xs       create_x3d width 2.0, depth 2.2, bottleneck 2.25     any T; H, W >= 32 (1)  (B, 192, 16, 4, 4)
    x3d_s        the x3d_xs trunk (XS and S differ only in their      any T; H, W >= 32 (1)  (B, 192, 16, 4, 4)
                 input, 4x160 and 13x160, and in the dropped head)
    slow_r50     create_resnet depth 50, SlowOnly pathway             any T, H, W            (B, 2048, 16, 4, 4)
    r2plus1d     create_r2plus1d depth 50                             any T, H, W            (B, 2048, 4, 4, 4)
    mvit_s       create_multiscale_vision_transformers, small         the built size (2)     (B, 384, 8, 7, 7)
    r3d_18       torchvision, stem + layer1..4                        any T, H, W            (B, 512, 2, 7, 7)
    r2plus1d_18  torchvision, stem + layer1..4                        any T, H, W            (B, 512, 2, 7, 7)
    mvit_v2_s    torchvision, tokens reshaped (3)                     any T, H, W            (B, 768, 8, 4, 4)
    swin3d_t     torchvision, channels-last features permuted         any T, H, W            (B, 768, 8, 4, 4)

"any" was checked down to 1x16x16 (maps of 1x1x1). (1) create_x3d asserts crop_size >= 32.
(2) Its positional embedding is fixed: the clip must be exactly num_frames x crop_size x crop_size,
with num_frames even and crop_size a multiple of 4. (3) ``mvit_v2_s()`` builds for 16x224; its
relative-position tables are interpolated to the grid of each input.

x3d_tiny is X3D at width 1.0, depth 1.0 with the stock bottleneck (2.25) and SE, but a stem that
strides 4 in space (with a 5x5 kernel so no pixel is skipped) and no stride in the last stage: the
map it ends on is the stock stride-32 map (4x4 at 112 px), time is kept whole (T' = T), and it runs in
channels_last_3d memory. One training step (forward + backward + AdamW on the backbone and a linear
head on pooled features, batch 8 of 16x112x112, 2 CPU cores, torch 2.14) takes 0.215 s (median of
30 steps after 3 warm-up ones) for 241k parameters. With the stock stride-2 stem the same widths
take 0.67 s (1.25 s without channels_last_3d), and only a ~30k-parameter X3D (width 0.5, depth 0.5)
fits the 0.3 s budget.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from mer._compat import import_pytorchvideo
from mer.registry import Registry

logger = logging.getLogger(__name__)

BACKBONES: Registry[Callable[..., Backbone]] = Registry("backbone")


class Backbone(nn.Module):
    """A clip ``(B, 3, T, H, W)`` float -> feature map ``(B, out_channels, T', H', W')``, T' >= 1."""

    out_channels: int

    def forward(self, clip: Tensor) -> Tensor:  # pragma: no cover - every subclass overrides
        raise NotImplementedError


def list_backbones(pattern: str = "*") -> list[str]:
    """Registered backbone names matching a glob, sorted: ``list_backbones("x3d*")``."""
    return BACKBONES.names(pattern)


def build_backbone(name: str, *, num_frames: int = 16, crop_size: int = 112, pretrained: str | None = None, **kwargs) -> Backbone:
    """The backbone registered as ``name`` for clips of ``num_frames`` x ``crop_size`` x ``crop_size``.

    ``kwargs`` go to the builder (and on to the pytorchvideo / torchvision constructor); those that
    are None are dropped so a config's ``null`` never overrides a builder default. ``pretrained`` is
    a local weights file loaded with :func:`load_pretrained`.
    """
    backbone = BACKBONES.build(name, num_frames=int(num_frames), crop_size=int(crop_size), **kwargs)
    if pretrained is not None:
        load_pretrained(backbone, pretrained)
    return backbone


# ----------------------------------------------------------------------------------------------
# pytorchvideo 3D CNNs (X3D, ResNet, R(2+1)D): the Net's blocks without the last one (the head).


class PyTorchVideoCNN(Backbone):
    """The ``blocks`` of a pytorchvideo ``Net`` minus its head; keys stay ``blocks.<i>.*``.

    ``channels_last`` keeps weights and activations in ``channels_last_3d``: on CPU the depthwise
    3D convolutions of X3D run about twice as fast that way; the output is made contiguous again.
    """

    def __init__(self, net: nn.Module, *, channels_last: bool = True) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(net.blocks[:-1])
        # Every stage of X3D, ResNet and R(2+1)D ends in a bottleneck whose conv_c sets the width.
        self.out_channels = int(self.blocks[-1].res_blocks[-1].branch2.conv_c.out_channels)
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last_3d)

    def forward(self, clip: Tensor) -> Tensor:
        x = clip.contiguous(memory_format=torch.channels_last_3d) if self.channels_last else clip
        for block in self.blocks:
            x = block(x)  # stem: (B, 3, T, H, W) -> (B, C0, T, H/s, W/s); stages shrink H, W (and T for some)
        return x.contiguous()  # (B, C, T', H', W') in the default memory format


# Keyword arguments of create_x3d per variant. XS, S (and M) share one trunk: they differ in the
# input clip (XS 4x160, S 13x160) and the head, which is dropped here.
X3D_CONFIGS: dict[str, dict] = {
    "x3d_tiny": dict(
        width_factor=1.0,
        depth_factor=1.0,
        bottleneck_factor=2.25,
        # Stride 4 in the stem is what makes CPU training affordable (4x fewer positions in every
        # stage); a 5x5 kernel still sees every pixel, and the last stage keeps its resolution so the
        # map ends at the stock stride 32.
        stem_conv_kernel_size=(5, 5, 5),
        stem_conv_stride=(1, 4, 4),
        stage_spatial_stride=(2, 2, 2, 1),
    ),
    "x3d_xs": dict(width_factor=2.0, depth_factor=2.2, bottleneck_factor=2.25),
    "x3d_s": dict(width_factor=2.0, depth_factor=2.2, bottleneck_factor=2.25),
}


class GroupNorm3d(nn.GroupNorm):
    """GroupNorm with BatchNorm3d's constructor, for pytorchvideo's ``norm=`` argument.

    Per-sample statistics do not depend on the batch: small CPU batches and several processes
    without SyncBatchNorm (CPU has none) train the same as one large batch.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = None) -> None:
        super().__init__(math.gcd(num_features, 8), num_features, eps=eps)


NORMS = {"batch": nn.BatchNorm3d, "group": GroupNorm3d}


def _x3d(variant: str, *, num_frames: int, crop_size: int, channels_last: bool = True, norm: str = "batch", **kw) -> Backbone:
    """``norm``: "batch" (X3D's own) or "group" (batch-independent)."""
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; valid choices: {', '.join(NORMS)}")
    x3d = import_pytorchvideo("pytorchvideo.models.x3d")
    # The input size only shapes the head's pooling kernel, which is dropped.
    net = x3d.create_x3d(
        input_clip_length=num_frames, input_crop_size=crop_size, norm=NORMS[norm], **{**X3D_CONFIGS[variant], **kw}
    )
    return PyTorchVideoCNN(net, channels_last=channels_last)


@BACKBONES.register("x3d_tiny")
def x3d_tiny(*, num_frames: int, crop_size: int, **kw) -> Backbone:
    """X3D width 1.0, depth 1.0, stem stride 4: the CPU default. (B, 3, T, H, W) -> (B, 96, T, H/32, W/32)."""
    return _x3d("x3d_tiny", num_frames=num_frames, crop_size=crop_size, **kw)


@BACKBONES.register("x3d_xs")
def x3d_xs(*, num_frames: int, crop_size: int, **kw) -> Backbone:
    """X3D-XS trunk (usually 4x160). (B, 3, T, H, W) -> (B, 192, T, H/32, W/32)."""
    return _x3d("x3d_xs", num_frames=num_frames, crop_size=crop_size, **kw)


@BACKBONES.register("x3d_s")
def x3d_s(*, num_frames: int, crop_size: int, **kw) -> Backbone:
    """X3D-S trunk (usually 13x160; 112 works). (B, 3, T, H, W) -> (B, 192, T, H/32, W/32)."""
    return _x3d("x3d_s", num_frames=num_frames, crop_size=crop_size, **kw)


@BACKBONES.register("slow_r50")
def slow_r50(*, num_frames: int, crop_size: int, channels_last: bool = True, **kw) -> Backbone:
    """SlowOnly ResNet-50: (B, 3, T, H, W) -> (B, 2048, T, H/32, W/32).

    The slow pathway of SlowFast: a 1x7x7 stem, temporal kernels only in res4/res5 (conv_a 3x1x1),
    no temporal stride anywhere.
    """
    resnet = import_pytorchvideo("pytorchvideo.models.resnet")
    settings = dict(
        model_depth=50,
        stem_conv_kernel_size=(1, 7, 7),
        stage_conv_a_kernel_size=((1, 1, 1), (1, 1, 1), (3, 1, 1), (3, 1, 1)),
        stage_temporal_stride=(1, 1, 1, 1),
    )
    return PyTorchVideoCNN(resnet.create_resnet(**{**settings, **kw}), channels_last=channels_last)


@BACKBONES.register("r2plus1d")
def r2plus1d(*, num_frames: int, crop_size: int, channels_last: bool = True, **kw) -> Backbone:
    """pytorchvideo R(2+1)D-50: (B, 3, T, H, W) -> (B, 2048, T/4, H/32, W/32)."""
    r2plus1d_module = import_pytorchvideo("pytorchvideo.models.r2plus1d")
    return PyTorchVideoCNN(r2plus1d_module.create_r2plus1d(**kw), channels_last=channels_last)


# ----------------------------------------------------------------------------------------------
# pytorchvideo MViT: tokens -> feature map.


class PyTorchVideoMViT(Backbone):
    """A pytorchvideo ``MultiscaleVisionTransformers`` without its head; patch tokens as a map.

    Its positional embedding is fixed at build time, so the clip must have exactly the
    (T, H, W) it was built for.
    """

    def __init__(self, net: nn.Module, *, input_size: tuple[int, int, int]) -> None:
        super().__init__()
        # Same attribute names as MultiscaleVisionTransformers so its checkpoints load as is.
        self.patch_embed = net.patch_embed
        self.cls_positional_encoding = net.cls_positional_encoding
        self.pos_drop = net.pos_drop
        self.norm_patch_embed = net.norm_patch_embed
        self.blocks = net.blocks
        self.norm_embed = net.norm_embed
        self.out_channels = int(net.norm_embed.normalized_shape[0])
        self.input_size = tuple(input_size)

    def forward(self, clip: Tensor) -> Tensor:
        if tuple(clip.shape[2:]) != self.input_size:
            raise ValueError(
                f"mvit backbone was built for clips of (T, H, W) = {self.input_size}, got {tuple(clip.shape[2:])}; "
                "build it with matching num_frames / crop_size"
            )
        x = self.patch_embed(clip)  # (B, 3, T, H, W) -> (B, N, C0), N = T/2 * H/4 * W/4
        x = self.cls_positional_encoding(x)  # (B, 1 + N, C0) with the class token first
        if self.pos_drop is not None:
            x = self.pos_drop(x)
        if self.norm_patch_embed is not None:
            x = self.norm_patch_embed(x)
        thw = list(self.cls_positional_encoding.patch_embed_shape)
        for block in self.blocks:
            x, thw = block(x, thw)  # query pooling shrinks (T, H, W); the block reports the new grid
        if self.norm_embed is not None:
            x = self.norm_embed(x)
        if self.cls_positional_encoding.cls_embed_on:
            x = x[:, 1:]  # (B, 1 + N', C) -> (B, N', C): drop the class token
        batch, _, channels = x.shape
        return x.transpose(1, 2).reshape(batch, channels, *thw)  # (B, N', C) -> (B, C, T', H', W')


@BACKBONES.register("mvit_s")
def mvit_s(*, num_frames: int, crop_size: int, **kw) -> Backbone:
    """A small MViT: (B, 3, T, H, W) -> (B, 384, T/2, H/16, W/16), e.g. 16x112 -> (B, 384, 8, 7, 7).

    MViT-B's patch embedding (3x7x7 conv, stride 2x4x4) and pooling scheme, cut to 10 blocks and
    two query-pooling stages (96 -> 192 -> 384 channels) so that a 112-px map keeps 7x7 positions.
    The key/value stride starts at 1x4x4 (MViT-B uses 1x8x8 at twice the resolution).
    """
    vision_transformers = import_pytorchvideo("pytorchvideo.models.vision_transformers")
    settings = dict(
        depth=10,
        embed_dim_mul=[[1, 2.0], [3, 2.0]],
        atten_head_mul=[[1, 2.0], [3, 2.0]],
        pool_q_stride_size=[[1, 1, 2, 2], [3, 1, 2, 2]],
        pool_kv_stride_adaptive=[1, 4, 4],
        pool_kvq_kernel=[3, 3, 3],
    )
    settings.update(kw)
    kernel = settings.get("conv_patch_embed_kernel", (3, 7, 7))
    stride = settings.get("conv_patch_embed_stride", (2, 4, 4))
    padding = settings.get("conv_patch_embed_padding", (1, 3, 3))
    input_size = (num_frames, crop_size, crop_size)
    # pytorchvideo sizes the positional embedding as size // stride; the conv must produce exactly that.
    for size, k, s, p in zip(input_size, kernel, stride, padding):
        if (size + 2 * p - k) // s + 1 != size // s or size // s < 1:
            raise ValueError(
                f"mvit_s needs num_frames divisible by {stride[0]} and crop_size divisible by {stride[1]}; "
                f"got num_frames={num_frames}, crop_size={crop_size}"
            )
    net = vision_transformers.create_multiscale_vision_transformers(
        spatial_size=crop_size, temporal_size=num_frames, **{**settings, "head": None}
    )
    return PyTorchVideoMViT(net, input_size=input_size)


# ----------------------------------------------------------------------------------------------
# torchvision video models (weights=None), features before pooling and classifier.


def _torchvision_model(name: str, kw: dict) -> nn.Module:
    if kw.pop("weights", None) is not None:
        raise ValueError("backbones never download weights; pass pretrained=/path/to/weights.pth instead")
    import torchvision.models.video as video

    return getattr(video, name)(weights=None, **kw)


class TorchvisionVideoResNet(Backbone):
    """torchvision ``VideoResNet`` (r3d_18, r2plus1d_18, mc3_18) as stem + layer1..4; keys as torchvision's."""

    def __init__(self, net: nn.Module, *, channels_last: bool = True) -> None:
        super().__init__()
        self.stem, self.layer1, self.layer2 = net.stem, net.layer1, net.layer2
        self.layer3, self.layer4 = net.layer3, net.layer4
        self.out_channels = int(net.fc.in_features)
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last_3d)

    def forward(self, clip: Tensor) -> Tensor:
        x = clip.contiguous(memory_format=torch.channels_last_3d) if self.channels_last else clip
        x = self.stem(x)  # (B, 3, T, H, W) -> (B, 64, T, H/2, W/2)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # -> (B, 512, T/8, H/16, W/16)
        return x.contiguous()


@BACKBONES.register("r3d_18")
def r3d_18(*, num_frames: int, crop_size: int, channels_last: bool = True, **kw) -> Backbone:
    """torchvision R3D-18: (B, 3, T, H, W) -> (B, 512, T/8, H/16, W/16) (sizes rounded up)."""
    return TorchvisionVideoResNet(_torchvision_model("r3d_18", kw), channels_last=channels_last)


@BACKBONES.register("r2plus1d_18")
def r2plus1d_18(*, num_frames: int, crop_size: int, channels_last: bool = True, **kw) -> Backbone:
    """torchvision R(2+1)D-18: (B, 3, T, H, W) -> (B, 512, T/8, H/16, W/16) (sizes rounded up)."""
    return TorchvisionVideoResNet(_torchvision_model("r2plus1d_18", kw), channels_last=channels_last)


class TorchvisionMViT(Backbone):
    """torchvision ``MViT`` without its head; the patch tokens reshaped to a map."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        # torchvision's attribute names, so its checkpoints load as is.
        self.conv_proj, self.pos_encoding = net.conv_proj, net.pos_encoding
        self.blocks, self.norm = net.blocks, net.norm
        self.out_channels = int(net.norm.normalized_shape[0])

    def forward(self, clip: Tensor) -> Tensor:
        x = self.conv_proj(clip)  # (B, 3, T, H, W) -> (B, 96, T/2, H/4, W/4)
        # The grid of this clip, not the one the model was built for (relative positions adapt).
        thw = tuple(x.shape[2:])
        x = self.pos_encoding(x.flatten(2).transpose(1, 2))  # -> (B, 1 + N, 96) with the class token first
        for block in self.blocks:
            x, thw = block(x, thw)
        x = self.norm(x)[:, 1:]  # (B, 1 + N', 768) -> (B, N', 768): drop the class token
        batch, _, channels = x.shape
        return x.transpose(1, 2).reshape(batch, channels, *thw)  # (B, N', C) -> (B, C, T', H', W')


@BACKBONES.register("mvit_v2_s")
def mvit_v2_s(*, num_frames: int, crop_size: int, **kw) -> Backbone:
    """torchvision MViTv2-S: (B, 3, T, H, W) -> (B, 768, T/2, H/32, W/32), e.g. 16x112 -> (B, 768, 8, 4, 4).

    ``mvit_v2_s()`` fixes spatial_size=224, temporal_size=16 (passing them is a TypeError). With
    MViTv2's relative position embeddings that only sizes the tables, which torchvision interpolates
    to the grid of each input, so clips of any size run (checked down to 1x16x16), and the
    parameter shapes stay those of torchvision's Kinetics checkpoint.
    """
    return TorchvisionMViT(_torchvision_model("mvit_v2_s", kw))


class TorchvisionSwin3d(Backbone):
    """torchvision ``SwinTransformer3d`` without pooling and head; its channels-last map permuted."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.patch_embed, self.pos_drop = net.patch_embed, net.pos_drop
        self.features, self.norm = net.features, net.norm
        self.out_channels = int(net.num_features)

    def forward(self, clip: Tensor) -> Tensor:
        x = self.patch_embed(clip)  # (B, 3, T, H, W) -> (B, T/2, H/4, W/4, 96)
        x = self.norm(self.features(self.pos_drop(x)))  # -> (B, T/2, H/32, W/32, 768)
        return x.permute(0, 4, 1, 2, 3).contiguous()  # -> (B, 768, T', H', W')


@BACKBONES.register("swin3d_t")
def swin3d_t(*, num_frames: int, crop_size: int, **kw) -> Backbone:
    """torchvision Swin3D-T: (B, 3, T, H, W) -> (B, 768, T/2, H/32, W/32) (sizes rounded up)."""
    return TorchvisionSwin3d(_torchvision_model("swin3d_t", kw))


# ----------------------------------------------------------------------------------------------
# Pretrained weights from a local file.

_WRAPPERS = ("state_dict", "model_state", "model")
_PREFIXES = ("module.", "model.", "backbone.")


def _unwrap(checkpoint: object) -> Mapping[str, object]:
    # Training checkpoints nest the weights ({"model_state": {...}, "optimizer": ...}), sometimes twice.
    while isinstance(checkpoint, Mapping):
        inner = next((checkpoint[k] for k in _WRAPPERS if isinstance(checkpoint.get(k), Mapping)), None)
        if inner is None:
            return checkpoint
        checkpoint = inner
    raise ValueError(f"expected a state dict, got {type(checkpoint).__name__}")


def _our_key(key: str, ours: Mapping[str, Tensor]) -> str:
    """The checkpoint key as our module names it: DDP / wrapper / MERNet prefixes stripped.

    Our backbones keep the attribute names of the model they were cut from, so once the prefixes
    are gone an original pytorchvideo or torchvision key is already ours.
    """
    while key not in ours:
        prefix = next((p for p in _PREFIXES if key.startswith(p)), None)
        if prefix is None:
            break
        key = key[len(prefix) :]
    return key


def load_pretrained(backbone: nn.Module, path: str | os.PathLike) -> dict:
    """Load a local weights file into ``backbone``, leniently, and say what happened.

    Accepts a bare state dict or one under "state_dict" / "model_state" / "model"; strips "module.",
    "model.", "backbone." prefixes; skips tensors whose shape differs from ours. Never downloads.
    Returns ``{"loaded": n, "missing": [...], "unexpected": [...], "mismatched": [...]}`` (key names
    as ours; unexpected ones as in the file after prefix stripping).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"pretrained weights file not found: {path}")
    state = _unwrap(torch.load(path, map_location="cpu", weights_only=True))
    ours = backbone.state_dict()

    to_load: dict[str, Tensor] = {}
    unexpected: list[str] = []
    mismatched: list[str] = []
    for key, value in state.items():
        if not isinstance(value, Tensor):
            continue
        name = _our_key(key, ours)
        if name not in ours:
            unexpected.append(name)
        elif value.shape != ours[name].shape:
            mismatched.append(name)
            shapes = tuple(value.shape), tuple(ours[name].shape)
            logger.warning("pretrained %s: shape %s in file, %s in model; skipped", name, *shapes)
        else:
            to_load[name] = value
    backbone.load_state_dict(to_load, strict=False)
    missing = [k for k in ours if k not in to_load and k not in mismatched]

    report = {"loaded": len(to_load), "missing": missing, "unexpected": unexpected, "mismatched": mismatched}
    logger.info(
        "pretrained %s: loaded %d tensors, %d missing, %d unexpected, %d mismatched",
        path,
        len(to_load),
        len(missing),
        len(unexpected),
        len(mismatched),
    )
    return report


# The frame-wise 2D networks (the field's flow models, a small CNN) register themselves in BACKBONES.
from mer.models import frame_nets  # noqa: E402, F401
