"""A clip that fails to decode mid-training is named and left out; the batch goes on."""

from __future__ import annotations

import pytest
import torch

from mer.data.aus import parse_aus
from mer.data.dataset import ClipDataset
from mer.data.records import ClipRecord
from mer.data.samplers import build_sampler
from mer.engine.loader import make_loader
from mer.engine.loop import predict
from tests.helpers import index_video


def test_a_broken_clip_is_named_and_left_out_of_its_batch(tmp_path):
    records = []
    for k in range(4):
        path = index_video(tmp_path / f"c{k}.mp4", 40)
        records.append(ClipRecord(f"s{k}", f"c{k}", str(path), 10, 20, 30, "x", k % 2, parse_aus("12"), 200.0, 40))
    (tmp_path / "c2.mp4").write_bytes(b"")  # broken after the annotations were read: found only when decoded
    dataset = ClipDataset(records, build_sampler("uniform", num_frames=4), skip_broken=True)
    loader = make_loader(dataset, batch_size=4, train=False, seed=0, num_workers=0, device=torch.device("cpu"))
    with pytest.warns(UserWarning, match=r"clip c2: .*c2.mp4: empty file \(0 bytes\); left out of its batch"):
        (batch,) = list(loader)
    assert batch["clip_id"] == ["c0", "c1", "c3"] and batch["clip"].shape[0] == 3

    class Constant(torch.nn.Module):
        def forward(self, clip):
            return {"emotion": torch.zeros(clip.shape[0], 2), "attention": torch.ones(clip.shape[0], clip.shape[2])}

    with pytest.warns(UserWarning, match="clip c2"):
        predictions = predict(Constant(), loader, device=torch.device("cpu"))
    assert predictions.clip_ids == ["c0", "c1", "c3"]
    with pytest.raises(Exception, match="c2.mp4: empty file"):  # without skip_broken the error is raised
        ClipDataset(records, build_sampler("uniform", num_frames=4))[2]
