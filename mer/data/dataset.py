"""ClipDataset: record -> sampled indices -> only those frames decoded -> tensors and targets.

    spec = ClipSpec(num_frames=16, size=112, representation="flow")
    ds = ClipDataset(records, build_sampler("keyframe", num_frames=16), ClipTransform(spec, train=True), train=True)
    item = ds[0]
    item["clip"]        # float (3, T, H, W), as mer.data.clip builds it
    item["emotion"]     # long ()
    item["frame_aus"]   # float (T, K): AU k of the clip, weighted by the event's intensity at each frame
    item["clip_aus"]    # float (K,): 1 for the clip's AUs
    item["indices"]     # long (T,): the positions decoded

Without a transform the clip is the decoded frames as floats in [0, 1]. Flow representations
are computed here, in the DataLoader's workers, and kept in ``flow_cache`` (a
:class:`~mer.data.motion.FlowCache`) per video, frame indices and motion settings. A sampler that
draws its frames anew each epoch near fixed positions (keyframes or an apex window with jitter)
has its flows kept pair by pair instead: the flow of (first frame, frame t) is the 2-frame clip
[first, t]'s entry, so a draw decodes and computes only the pairs no earlier draw had; the flow of
a pair does not depend on the other frames drawn. Not with a ``frame_transform`` (a face crop is
found on the frames drawn), nor for the random sampler, whose pairs seldom recur.

The frame AU target is on for a sampled frame inside [onset, offset] and weighted by an intensity
that rises linearly from onset to 1 at the apex and falls to the offset:
``w(i) = (i - onset + 1) / (apex - onset + 1)`` on the rise, ``(offset - i + 1) / (offset - apex + 1)``
on the fall, 0 outside.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from mer.data.clip import compute_clip_flows
from mer.data.records import ClipRecord
from mer.data.samplers import ClipSampler
from mer.data.video import VideoError, open_video

# AUs modelled by default: those of the DFME emotion prototypes and the synthetic generator.
DEFAULT_AUS = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26)


def event_intensity(indices: Sequence[int], onset: int, apex: int, offset: int) -> np.ndarray:
    """Intensity in [0, 1] of the expression at each frame position (1 at the apex, 0 outside)."""
    i = np.asarray(indices, dtype=np.float64)
    rise = (i - onset + 1) / (apex - onset + 1)
    fall = (offset - i + 1) / (offset - apex + 1)
    w = np.where(i <= apex, rise, fall)
    return np.where((i >= onset) & (i <= offset), np.clip(w, 0.0, 1.0), 0.0)


def au_vector(record: ClipRecord, au_list: Sequence[int]) -> np.ndarray:
    present = record.au_numbers
    return np.array([1.0 if au in present else 0.0 for au in au_list], dtype=np.float32)


class ClipDataset(Dataset):
    def __init__(
        self,
        records: Sequence[ClipRecord],
        sampler: ClipSampler,
        transform: Callable | None = None,
        *,
        train: bool = False,
        au_list: Sequence[int] = DEFAULT_AUS,
        backend: str = "decord",
        check_frames: bool = True,
        frame_transform: Callable[[np.ndarray], np.ndarray] | None = None,
        flow_cache=None,
        skip_broken: bool = False,
    ) -> None:
        self.records = list(records)
        self.sampler = sampler
        self.transform = transform
        self.train = train
        self.au_list = tuple(au_list)
        self.backend = backend
        self.check_frames = check_frames  # compare the annotation's frame count with the file's
        self.frame_transform = frame_transform  # on uint8 (T, H, W, 3) before tensors, e.g. FaceCrop
        self.flow_cache = flow_cache
        # True: a clip that fails to decode is None (one warning naming it) and the batch goes on
        # without it (mer.engine.loader.collate_clips); False: the error is raised
        self.skip_broken = skip_broken

    def __len__(self) -> int:
        return len(self.records)

    @property
    def labels(self) -> np.ndarray:
        return np.array([r.label for r in self.records], dtype=np.int64)

    def load_frames(self, record: ClipRecord, indices: Sequence[int]) -> np.ndarray:
        """uint8 (T, H, W, 3) for ``indices``; the source is opened and released per clip."""
        expected = record.n_frames if self.check_frames and record.n_frames else None
        with open_video(record.path, self.backend, expected_frames=expected, fps=record.fps) as source:
            return source.get_frames(indices)

    def _flow_settings(self) -> dict | None:
        """What shapes a clip's flows besides its video and frames, when the transform takes flow and
        a cache is set; else None."""
        spec = getattr(self.transform, "spec", None)
        if spec is None or not spec.uses_flow or self.flow_cache is None:
            return None
        return {"motion": spec.motion.key(), "side": spec.frame_side, "frames": repr(self.frame_transform)}

    def _flow_key(self, record: ClipRecord, indices: Sequence[int]) -> str | None:
        """The flow cache's key of a clip when the transform takes flow and a cache is set, else None."""
        settings = self._flow_settings()
        if settings is None or self.sampler.draws_at_random(self.train):  # random training draws: see _pair_keys
            return None
        from mer.data.motion import video_digest

        return self.flow_cache.key(video_digest(record.path), indices, settings)

    def _pair_keys(self, record: ClipRecord, indices: Sequence[int]) -> list[str] | None:
        """The flow cache's keys of the pairs (first frame, frame t), t = 1..T-1, when a random draw's
        flows are kept pair by pair (see the module doc), else None."""
        settings = self._flow_settings()
        if settings is None or self.frame_transform is not None or len(indices) < 2:
            return None
        if not self.sampler.draws_near_fixed_frames(self.train):
            return None
        from mer.data.motion import video_digest

        digest = video_digest(record.path)
        return [self.flow_cache.key(digest, [indices[0], j], settings) for j in indices[1:]]

    def _pair_flows(self, record: ClipRecord, indices: Sequence[int], keys: list[str]) -> np.ndarray:
        """(T, h, w, 2) flows of a draw from the cached pairs; the missing ones decoded and computed
        together (the first frame once) and kept."""
        pairs = [self.flow_cache.get(key) for key in keys]
        missing = [t for t, pair in enumerate(pairs) if pair is None]
        if missing:
            # the first frame then the missing ones, repeats kept: a frame drawn twice, or drawn equal
            # to the first, gets the flow the whole clip's computation would give it
            frames = self.load_frames(record, [indices[0]] + [indices[t + 1] for t in missing])
            flows = compute_clip_flows(frames, self.transform.spec)
            for k, t in enumerate(missing, start=1):
                pairs[t] = np.stack([flows[0], flows[k]])
                self.flow_cache.put(keys[t], pairs[t])
        return np.stack([pairs[0][0]] + [pair[1] for pair in pairs])

    def __getitem__(self, i: int) -> dict | None:
        if not self.skip_broken:
            return self.item(i)
        try:
            return self.item(i)
        except (VideoError, OSError, ValueError) as exc:
            reason = " ".join(str(exc).split())
            warnings.warn(f"clip {self.records[i].clip_id}: {reason}; left out of its batch", stacklevel=2)
            return None

    def item(self, i: int) -> dict:
        """The clip ``i`` as a dict of tensors and targets (see the module doc)."""
        record = self.records[i]
        indices = self.sampler(record, train=self.train)
        key = self._flow_key(record, indices)
        flows = None if key is None else self.flow_cache.get(key)  # a clip whose flows are cached is not decoded
        if key is None and (pair_keys := self._pair_keys(record, indices)) is not None:
            flows = self._pair_flows(record, indices, pair_keys)
        if flows is None:
            frames = self.load_frames(record, indices)
            if self.frame_transform is not None:
                frames = self.frame_transform(frames)
        if self.transform is None:  # one pass: (T, H, W, C) uint8 -> (C, T, H, W) float in [0, 1]
            clip = torch.empty((frames.shape[3], *frames.shape[:3]), dtype=torch.float32)
            clip.copy_(torch.from_numpy(frames).permute(3, 0, 1, 2)).mul_(1.0 / 255.0)
        elif flows is not None:
            clip = self.transform(flows=flows)  # (3, T, S, S)
        else:
            if self.transform.spec.uses_flow:
                flows = compute_clip_flows(frames, self.transform.spec)
                if key is not None:
                    self.flow_cache.put(key, flows)
            clip = self.transform(frames, flows)  # (3, T, S, S)
        clip_aus = au_vector(record, self.au_list)
        weight = event_intensity(indices, record.onset, record.apex, record.offset).astype(np.float32)
        return {
            "clip": clip,
            "emotion": torch.tensor(record.label, dtype=torch.long),
            "frame_aus": torch.from_numpy(weight[:, None] * clip_aus[None, :]),  # (T, K)
            "clip_aus": torch.from_numpy(clip_aus),
            "indices": torch.tensor(indices, dtype=torch.long),
            "subject": record.subject,
            "clip_id": record.clip_id,
        }
