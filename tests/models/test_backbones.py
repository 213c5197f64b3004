import pytest
import torch
import torch.nn.functional as F
import torchvision

from mer._compat import import_pytorchvideo
from mer.models.backbones import X3D_CONFIGS, build_backbone, list_backbones, load_pretrained

# name -> (batch, frames, crop) the smallest clip each is checked at, and the map expected there.
SMALL = {
    "x3d_tiny": ((2, 4, 64), (96, 4, 2, 2)),
    "x3d_xs": ((2, 4, 64), (192, 4, 2, 2)),
    "x3d_s": ((2, 4, 64), (192, 4, 2, 2)),
    "slow_r50": ((1, 4, 64), (2048, 4, 2, 2)),
    "r2plus1d": ((1, 4, 64), (2048, 1, 2, 2)),
    "mvit_s": ((1, 4, 64), (384, 2, 4, 4)),
    "r3d_18": ((1, 4, 64), (512, 1, 4, 4)),
    "r2plus1d_18": ((1, 4, 64), (512, 1, 4, 4)),
    "mvit_v2_s": ((1, 4, 64), (768, 2, 2, 2)),
    "swin3d_t": ((1, 4, 64), (768, 2, 2, 2)),
    "frame_cnn": ((2, 4, 64), (128, 4, 16, 16)),
    "ststnet": ((2, 4, 64), (16, 4, 11, 11)),
    "off_apexnet": ((2, 4, 64), (1024, 4, 1, 1)),
}
HEAVY = {"slow_r50", "r2plus1d", "mvit_v2_s", "swin3d_t"}
# The map at the default clip, 16x112x112 (the table in the module docstring).
DEFAULT = {
    "x3d_tiny": (96, 16, 4, 4),
    "x3d_xs": (192, 16, 4, 4),
    "x3d_s": (192, 16, 4, 4),
    "slow_r50": (2048, 16, 4, 4),
    "r2plus1d": (2048, 4, 4, 4),
    "mvit_s": (384, 8, 7, 7),
    "r3d_18": (512, 2, 7, 7),
    "r2plus1d_18": (512, 2, 7, 7),
    "mvit_v2_s": (768, 8, 4, 4),
    "swin3d_t": (768, 8, 4, 4),
    "frame_cnn": (128, 16, 28, 28),
    "ststnet": (16, 16, 19, 19),
    "off_apexnet": (1024, 16, 1, 1),
}


def test_every_registered_backbone_is_checked():
    assert sorted(SMALL) == sorted(DEFAULT) == list_backbones()


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in sorted(SMALL)])
def test_feature_map_shape(name):
    (batch, frames, crop), expected = SMALL[name]
    backbone = build_backbone(name, num_frames=frames, crop_size=crop).eval()
    with torch.no_grad():
        fmap = backbone(torch.randn(batch, 3, frames, crop, crop))
    assert fmap.shape == (batch, *expected)
    assert fmap.shape[1] == backbone.out_channels and fmap.shape[2] >= 1
    assert torch.isfinite(fmap).all()
    # What the per-frame head does with it: pool space, resize time back to T.
    per_frame = F.interpolate(F.adaptive_avg_pool3d(fmap, (None, 1, 1)).flatten(2), size=frames, mode="linear")
    assert per_frame.shape == (batch, backbone.out_channels, frames)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DEFAULT))
def test_feature_map_shape_at_default_clip(name):
    backbone = build_backbone(name).eval()  # num_frames=16, crop_size=112
    with torch.no_grad():
        fmap = backbone(torch.randn(1, 3, 16, 112, 112))
    assert fmap.shape == (1, *DEFAULT[name]) and fmap.shape[1] == backbone.out_channels


def test_x3d_tiny_keeps_time_and_trains():
    backbone = build_backbone("x3d_tiny", num_frames=16, crop_size=112)
    clip = torch.randn(2, 3, 16, 112, 112, requires_grad=True)
    fmap = backbone(clip)
    assert fmap.shape == (2, 96, 16, 4, 4)  # T' == T: full temporal resolution
    assert fmap.is_contiguous()  # the channels_last_3d inside does not leak out
    fmap.flatten(2).mean().backward()
    first = backbone.blocks[0].conv.conv_t.weight  # the stem's first (spatial) convolution
    assert first.grad is not None and first.grad.abs().sum() > 0
    assert clip.grad is not None and clip.grad.abs().sum() > 0


def test_x3d_tiny_memory_format_changes_nothing():
    torch.manual_seed(0)
    fast = build_backbone("x3d_tiny", num_frames=4, crop_size=64).eval()
    plain = build_backbone("x3d_tiny", num_frames=4, crop_size=64, channels_last=False).eval()
    plain.load_state_dict(fast.state_dict())
    clip = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(fast(clip), plain(clip), rtol=1e-4, atol=1e-4)
        # Moved and cast like a trainer would (device, dtype), in eval mode.
        moved = fast.to(torch.device("cpu")).to(torch.float64).eval()
        out = moved(clip.double())
    assert out.dtype == torch.float64 and out.shape == (1, 96, 4, 2, 2) and out.is_contiguous()
    assert out.mean(dim=(3, 4)).shape == (1, 96, 4)


def test_kwargs_reach_the_builder_and_none_keeps_defaults():
    assert build_backbone("x3d_tiny", num_frames=4, crop_size=64, width_factor=None).out_channels == 96
    assert build_backbone("x3d_tiny", num_frames=4, crop_size=64, width_factor=2.0).out_channels == 192
    with pytest.raises(ValueError, match="backbone 'x3d_tiny'.*unexpected keyword argument 'widht_factor'"):
        build_backbone("x3d_tiny", num_frames=4, crop_size=64, widht_factor=2.0)
    with pytest.raises(ValueError, match="never download"):
        build_backbone("r3d_18", weights="KINETICS400_V1")


def test_names_and_errors():
    assert list_backbones("x3d*") == ["x3d_s", "x3d_tiny", "x3d_xs"]
    with pytest.raises(ValueError, match=r"unknown backbone 'x3d_huge'; valid choices: .*mvit_s.*r3d_18.*x3d_tiny"):
        build_backbone("x3d_huge")
    with pytest.raises(ValueError, match="num_frames divisible by 2"):
        build_backbone("mvit_s", num_frames=5, crop_size=64)
    mvit = build_backbone("mvit_s", num_frames=4, crop_size=64)
    with pytest.raises(ValueError, match=r"built for clips of \(T, H, W\) = \(4, 64, 64\)"):
        mvit(torch.zeros(1, 3, 8, 64, 64))


def _equal_except(backbone, saved, skip=()):
    for key, value in backbone.state_dict().items():
        if key not in skip:
            assert torch.equal(value, saved[key]), key


def test_load_full_pytorchvideo_x3d_checkpoint(tmp_path, caplog):
    x3d = import_pytorchvideo("pytorchvideo.models.x3d")
    full = x3d.create_x3d(input_clip_length=4, input_crop_size=64, model_num_class=5, **X3D_CONFIGS["x3d_tiny"])
    saved = full.state_dict()
    bad = "blocks.1.res_blocks.0.branch2.conv_a.weight"
    saved[bad] = torch.zeros(3, 3, 1, 1, 1)  # not the shape our backbone has
    path = tmp_path / "x3d.pyth"
    torch.save({"model_state": saved, "epoch": 7}, path)

    backbone = build_backbone("x3d_tiny", num_frames=4, crop_size=64)
    with caplog.at_level("INFO", logger="mer.models.backbones"):
        report = load_pretrained(backbone, str(path))
    assert "loaded" in caplog.text and str(path) in caplog.text
    head = sorted(k for k in saved if k.startswith("blocks.5."))  # the X3D head: conv5, pool, projection
    assert head and sorted(report["unexpected"]) == head
    assert report["mismatched"] == [bad] and report["missing"] == []
    assert report["loaded"] == len(backbone.state_dict()) - 1
    _equal_except(backbone, saved, skip={bad})


def test_load_torchvision_r3d_18_with_module_prefix(tmp_path):
    full = torchvision.models.video.r3d_18(weights=None, num_classes=5)
    saved = full.state_dict()
    path = tmp_path / "r3d.pth"
    torch.save({f"module.{k}": v for k, v in saved.items()}, path)  # as DataParallel / DDP saves it

    backbone = build_backbone("r3d_18", num_frames=4, crop_size=64, pretrained=str(path))
    _equal_except(backbone, saved)
    report = load_pretrained(backbone, path)
    assert sorted(report["unexpected"]) == ["fc.bias", "fc.weight"]
    assert report["missing"] == [] and report["mismatched"] == []


def test_load_missing_file_names_it(tmp_path):
    path = tmp_path / "nowhere" / "weights.pth"
    with pytest.raises(FileNotFoundError, match="nowhere/weights.pth"):
        load_pretrained(build_backbone("x3d_tiny", num_frames=4, crop_size=64), str(path))
