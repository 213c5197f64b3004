import inspect

import pytest
import torch
from torch import nn

from mer.models.heads import CosineClassifier, GridPool, frame_features
from mer.models.net import MERNet


class TinyBackbone(nn.Module):
    """(B, 3, T, H, W) -> (B, 8, T/2, H/4, W/4), like a real backbone that halves time."""

    out_channels = 8

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 8, kernel_size=3, stride=(2, 4, 4), padding=1)

    def forward(self, x):
        return self.conv(x)


def make(**kw):
    torch.manual_seed(0)
    return MERNet(TinyBackbone(), num_classes=7, num_aus=5, dim=16, au_hidden=12, dropout=0.0, **kw)


def test_frame_features_resize_time_back():
    fmap = torch.arange(2 * 3 * 4 * 2 * 2, dtype=torch.float32).reshape(2, 3, 4, 2, 2)
    f = frame_features(GridPool(1)(fmap), 8)
    assert f.shape == (2, 8, 3)
    assert torch.allclose(f[:, 0], fmap[:, :, 0].mean(dim=(2, 3))) and torch.allclose(f[:, -1], fmap[:, :, -1].mean(dim=(2, 3)))


@pytest.mark.parametrize("size", [2, 4, 7, 8])
def test_grid_pool_equals_adaptive_average_pooling(size):
    fmap = torch.randn(2, 5, 3, size, size)
    expected = torch.nn.functional.adaptive_avg_pool3d(fmap, (3, 4, 4)).permute(0, 1, 3, 4, 2).flatten(1, 3)
    assert torch.allclose(GridPool(4)(fmap), expected, atol=1e-5)  # (B, C * 16, T'), channel-major


def test_outputs_and_shapes():
    out = make()(torch.randn(2, 3, 8, 32, 32))
    assert out["emotion"].shape == (2, 7) and out["frame_aus"].shape == (2, 8, 5) and out["clip_aus"].shape == (2, 5)
    assert out["attention"].shape == (2, 8) and torch.allclose(out["attention"].sum(1), torch.ones(2))
    assert torch.equal(out["clip_aus"], out["frame_aus"].max(dim=1).values)


def test_gates_carry_au_supervision_into_the_emotion_branch():
    model = make()
    out = model(torch.randn(2, 3, 8, 32, 32))
    out["frame_aus"].sum().backward()  # an AU-only loss
    # the AU branch reads the FER context z through its gate, so an AU loss trains the FER side too
    assert model.fer_head.gate_fer.weight.grad.abs().sum() > 0
    assert model.fer_head.attention[0].weight.grad.abs().sum() > 0
    assert model.fer_head.classifier.weight.grad is None
    model.zero_grad()
    model(torch.randn(2, 3, 8, 32, 32))["emotion"].sum().backward()
    assert model.au_head.hidden[0].weight.grad.abs().sum() > 0  # the emotion loss trains the AU hidden state


def test_ablations():
    fer_only = make(au_head=False)(torch.randn(1, 3, 8, 32, 32))
    assert set(fer_only) == {"emotion", "attention", "embedding"}
    concat = make(gate=False)
    assert not hasattr(concat.fer_head, "gate_fer") and hasattr(concat.fer_head, "concat_fer")
    assert concat(torch.randn(1, 3, 8, 32, 32))["frame_aus"].shape == (1, 8, 5)
    with pytest.raises(ValueError, match="valid choices: cosine, linear"):
        make(classifier="softmax")


def test_build_model_passes_only_the_options_a_config_sets():
    from omegaconf import OmegaConf

    from mer.models.net import build_model

    cfg = OmegaConf.create(
        {"backbone": "x3d_tiny", "backbone_options": {}, "pretrained": None, "dim": 48, "grid": None, "gate": None}
    )
    model = build_model(cfg, num_classes=7, num_aus=5, num_frames=4, crop_size=32)
    default = inspect.signature(MERNet).parameters
    assert model.project[0].out_features == 48  # set: passed on
    assert model.pool.grid == default["grid"].default and model.fer_head.gate == default["gate"].default  # null: MERNet's default
    with pytest.raises(ValueError, match=r"unknown model option\(s\) input; valid: backbone, .*dropout"):
        build_model(OmegaConf.merge(cfg, {"input": "diff"}), num_classes=7, num_aus=5, num_frames=4, crop_size=32)


def test_cosine_classifier_is_bounded():
    head = CosineClassifier(16, 4)
    logits = head(torch.randn(5, 16) * 100)
    assert logits.abs().max() <= 1.0 + 1e-6


class Payload:
    """An object a pickle would rebuild by running code."""


def test_a_file_that_is_not_a_checkpoint_is_one_line_and_never_loaded_unsafely(tmp_path):
    from mer.models.checkpoint import load_checkpoint, load_model

    good = tmp_path / "good.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "config": {}, "class_names": ["a"], "au_names": []}, good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:100])
    with pytest.raises(
        ValueError, match=r"truncated.pt: not a readable mer checkpoint \(truncated, corrupt or not a torch file"
    ) as err:
        load_checkpoint(truncated)
    assert "weights_only=False" not in str(err.value) and "\n" not in str(err.value)
    torch.save({"model": Payload()}, tmp_path / "code.pt")  # a pickled object: weights_only refuses it, and so do we
    with pytest.raises(ValueError, match="code.pt: not a readable mer checkpoint") as err:
        load_checkpoint(tmp_path / "code.pt")
    assert "weights_only=False" not in str(err.value)
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "state_dict.pt")
    with pytest.raises(
        ValueError, match=r"state_dict.pt: not a mer checkpoint: it lacks model, config, class_names, au_names \(a plain"
    ):
        load_model(tmp_path / "state_dict.pt")
