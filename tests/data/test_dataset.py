import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mer.data.aus import parse_aus
from mer.data.clip import ClipSpec, ClipTransform
from mer.data.dataset import ClipDataset, event_intensity
from mer.data.records import ClipRecord
from mer.data.samplers import build_sampler
from tests.helpers import index_video, read_index


@pytest.fixture
def records(tmp_path):
    out = []
    for k, (subject, label) in enumerate([("s1", 0), ("s2", 3), ("s3", 6)]):
        path = index_video(tmp_path / f"{subject}.mp4", 60)
        out.append(ClipRecord(subject, f"c{k}", str(path), 20, 30, 45, "x", label, parse_aus("6+L12"), 200.0, 60))
    return out


def test_intensity_peaks_at_apex_and_is_zero_outside():
    w = event_intensity(range(0, 60), onset=20, apex=30, offset=45)
    assert w[30] == 1.0 and w.argmax() == 30
    assert np.all(w[:20] == 0) and np.all(w[46:] == 0) and np.all(w[20:46] > 0)
    assert np.all(np.diff(w[20:31]) > 0) and np.all(np.diff(w[30:46]) < 0)


def test_item_holds_the_decoded_indices_and_targets(records):
    ds = ClipDataset(records, build_sampler("keyframe", num_frames=8, context_frames=1), au_list=(1, 6, 12))
    item = ds[0]
    assert item["clip"].shape == (3, 8, 64, 64) and item["clip"].dtype == torch.float32
    indices = item["indices"].tolist()
    # the pixels are those of the sampled frames: channel 0 of each frame spells its index
    frames = (item["clip"].permute(1, 2, 3, 0).numpy() * 255).round().astype(np.uint8)
    assert [read_index(f) for f in frames] == indices
    assert item["emotion"].item() == 0 and item["clip_aus"].tolist() == [0.0, 1.0, 1.0]
    fa = item["frame_aus"]
    assert fa.shape == (8, 3) and torch.all(fa[:, 0] == 0)
    apex_row = indices.index(30)
    assert fa[apex_row, 1] == 1.0 and fa[0, 1] == 0.0  # the context frame before onset is off
    assert torch.allclose(fa[:, 1], fa[:, 2])


def test_transforms_and_batching(records):
    spec = ClipSpec(num_frames=6, size=48, representation="frames")
    ds = ClipDataset(
        records, build_sampler("uniform", num_frames=6), ClipTransform(spec, train=True, augment={"flip": True}), train=True
    )
    batch = next(iter(DataLoader(ds, batch_size=3, num_workers=2)))
    assert batch["clip"].shape == (3, 3, 6, 48, 48)
    assert batch["frame_aus"].shape == (3, 6, 16) and batch["subject"] == ["s1", "s2", "s3"]
    assert batch["emotion"].tolist() == [0, 3, 6]
    assert abs(batch["clip"].mean().item()) < 3  # normalised, not raw 0..255


def test_eval_items_are_deterministic(records):
    ds = ClipDataset(
        records, build_sampler("keyframe", num_frames=8), ClipTransform(ClipSpec(num_frames=8, size=48, representation="flow"))
    )
    assert torch.equal(ds[1]["clip"], ds[1]["clip"])


def test_a_broken_clip_is_reported_with_its_path(records, tmp_path):
    broken = records[0].replace(path=str(tmp_path / "gone.mp4"))
    with pytest.raises(Exception, match="gone.mp4: missing file"):
        ClipDataset([broken], build_sampler("uniform", num_frames=4))[0]


def test_flow_clips_are_the_same_from_a_cold_and_a_warm_cache(records, tmp_path):
    from mer.data.motion import FlowCache

    spec = ClipSpec(num_frames=6, size=64, representation="flow")
    cache = FlowCache(tmp_path / "flows")
    make = lambda flow_cache: ClipDataset(
        records, build_sampler("keyframe", num_frames=6), ClipTransform(spec), flow_cache=flow_cache
    )  # noqa: E731
    cold = make(cache)[0]["clip"]
    assert len(list(cache.folder.glob("*.npy"))) == 1  # computed once, kept
    warm = make(cache)[0]["clip"]
    assert torch.equal(cold, warm) and torch.equal(cold, make(None)[0]["clip"])


def test_random_segment_draws_are_not_cached_but_evaluation_frames_are(records, tmp_path):
    from mer.data.motion import FlowCache

    spec = ClipSpec(num_frames=2, size=32, representation="flow")
    cache = FlowCache(tmp_path / "flows")
    train = ClipDataset(records[:2], build_sampler("random", num_frames=2), ClipTransform(spec), train=True, flow_cache=cache)
    for _ in range(3):
        train[0], train[1]
    assert not list(cache.folder.glob("*.npy"))  # segments over the whole clip: every draw would add an entry
    test = ClipDataset(records[:2], build_sampler("random", num_frames=2), ClipTransform(spec), flow_cache=cache)
    test[0], test[1]
    assert len(list(cache.folder.glob("*.npy"))) == 2
    fixed = ClipDataset(records[:1], build_sampler("uniform", num_frames=2), ClipTransform(spec), train=True, flow_cache=cache)
    fixed[0]
    assert len(list(cache.folder.glob("*.npy"))) == 3  # a sampler without chance caches in training too


@pytest.mark.parametrize(
    "name, options", [("keyframe", {"jitter": 0.5, "rise_share": 0.5}), ("apex_window", {"stride": 2, "jitter": 3})]
)
def test_jittered_draws_are_cached_pair_by_pair_and_give_the_same_clips(records, tmp_path, monkeypatch, name, options):
    import random

    from mer.data.motion import FlowCache

    spec = ClipSpec(num_frames=5, size=32, representation="flow")
    cache = FlowCache(tmp_path / "flows")
    sampler = build_sampler(name, num_frames=5, **options)
    cached = ClipDataset(records[:2], sampler, ClipTransform(spec), train=True, flow_cache=cache)
    plain = ClipDataset(records[:2], sampler, ClipTransform(spec), train=True)
    decoded = []
    load_frames = ClipDataset.load_frames
    monkeypatch.setattr(ClipDataset, "load_frames", lambda self, r, idx: decoded.append(list(idx)) or load_frames(self, r, idx))

    def draws(ds, seed):
        random.seed(seed)  # the samplers draw from `random`, as in a DataLoader worker
        return [ds[i] for i in (0, 1) for _ in range(4)]

    pairs = set()
    for seed in (0, 1):
        for a, b in zip(draws(cached, seed), draws(plain, seed)):
            assert a["indices"].tolist() == b["indices"].tolist()
            assert torch.equal(a["clip"], b["clip"])  # a pair's flow does not depend on the other frames drawn
            first, *rest = a["indices"].tolist()
            pairs |= {(a["clip_id"], first, j) for j in rest}
    assert len(list(cache.folder.glob("*.npy"))) == len(pairs) > 8  # one entry a pair, whatever draw it came in
    decoded.clear()
    for item in draws(cached, 0):  # the same draws again: every pair is kept, no frame is decoded
        assert item["clip"].shape == (3, 5, 32, 32)
    assert decoded == []
    # with a face crop the crop depends on every frame drawn: not kept pair by pair
    cropped = ClipDataset(
        records[:1],
        sampler,
        ClipTransform(spec),
        train=True,
        flow_cache=FlowCache(tmp_path / "crop"),
        frame_transform=lambda frames: frames,
    )
    cropped[0]
    assert not list((tmp_path / "crop").glob("*.npy"))
