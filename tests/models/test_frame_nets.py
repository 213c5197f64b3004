"""The field's apex-flow models: their shapes as the papers give them, frame by frame."""

import pytest
import torch

from mer.models.backbones import build_backbone
from mer.models.net import MERNet


def test_ststnet_is_three_shallow_streams_with_the_papers_400_features():
    net = build_backbone("ststnet", num_frames=2, crop_size=28)
    fmap = net(torch.randn(3, 3, 2, 28, 28))
    assert fmap.shape == (3, 16, 2, 5, 5) and 16 * 5 * 5 == 400
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [3, 5, 8] and all(c.kernel_size == (3, 3) for c in convs)


def test_off_apexnet_reads_u_and_v_in_their_own_streams():
    net = build_backbone("off_apexnet", num_frames=2, crop_size=28).eval()
    clip = torch.randn(2, 3, 2, 28, 28)
    assert net(clip).shape == (2, 1024, 2, 1, 1)
    changed = clip.clone()
    changed[:, 2] = torch.randn(2, 2, 28, 28)  # the third channel (|flow| or strain) is not its input
    assert torch.equal(net(clip), net(changed))
    changed[:, 1] += 1.0  # v is
    assert not torch.equal(net(clip), net(changed))
    with pytest.raises(ValueError, match="off_apexnet was built for 28 x 28 flow images, got \\(32, 32\\)"):
        net(torch.randn(1, 3, 2, 32, 32))


@pytest.mark.parametrize("name, grid", [("ststnet", 5), ("off_apexnet", 1), ("frame_cnn", 4)])
def test_frames_are_independent_and_the_heads_attend_to_them(name, grid):
    torch.manual_seed(0)
    model = MERNet(build_backbone(name, num_frames=2, crop_size=28), num_classes=3, num_aus=4, grid=grid).eval()
    clip = torch.randn(2, 3, 2, 28, 28)
    clip[:, :, 0] = 0  # the reference frame's flow is zero
    out = model(clip)
    assert out["emotion"].shape == (2, 3) and out["frame_aus"].shape == (2, 2, 4) and out["attention"].shape == (2, 2)
    fmap = model.backbone(clip)
    other = clip.clone()
    other[:, :, 1] = torch.randn(2, 3, 28, 28)  # the apex changed: the reference's features did not
    assert torch.allclose(model.backbone(other)[:, :, 0], fmap[:, :, 0]) and not torch.allclose(
        model.backbone(other)[:, :, 1], fmap[:, :, 1]
    )


def test_frame_cnn_keeps_a_quarter_of_the_resolution_per_frame():
    net = build_backbone("frame_cnn", num_frames=3, crop_size=56)
    assert net(torch.randn(2, 3, 3, 56, 56)).shape == (2, 128, 3, 14, 14)
    assert net(torch.randn(1, 3, 1, 28, 28)).shape == (1, 128, 1, 7, 7)  # any size, any frame count


@pytest.mark.parametrize("name", ["frame_cnn", "ststnet"])
def test_group_norm_does_not_depend_on_the_batch(name):
    net = build_backbone(name, num_frames=2, crop_size=28, norm="group").train()
    clips = torch.randn(4, 3, 2, 28, 28)
    # training mode: batch norm would mix the clips' statistics; group norm keeps each clip to itself
    assert torch.allclose(net(clips)[:1], net(clips[:1]), atol=1e-5)
    batch_norm = build_backbone(name, num_frames=2, crop_size=28).train()
    assert not torch.allclose(batch_norm(clips)[:1], batch_norm(clips[:1]), atol=1e-3)  # what group norm avoids
    with pytest.raises(ValueError, match="unknown norm 'layer'; valid choices: batch, group"):
        build_backbone(name, num_frames=2, crop_size=28, norm="layer")
