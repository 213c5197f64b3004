"""What a scoring DataLoader worker runs: pass 1 and pass 2 of each of its videos (mer.score).

Kept apart from :mod:`mer.score` on purpose: workers are spawned, and a spawned worker imports the
module of the dataset it unpickles. This one needs torch's DataLoader, NumPy, OpenCV, PyAV and
mer's data code, not Hydra, the models or ONNX Runtime (about 0.5 GB of RSS instead of 0.8 GB per
worker, measured with psutil on import).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import IterableDataset, get_worker_info

from mer.data.clip import ClipSpec, ClipTransform
from mer.data.samplers import ClipSampler
from mer.data.video import open_video
from mer.scoring.pipeline import (
    VideoPlan,
    cut_clips,
    load_cached_plan,
    plan_cache_key,
    plan_from_records,
    save_cached_plan,
    spot_video,
)
from mer.scoring.spotting import SpottingConfig


class VideoJobs(IterableDataset):
    """Each worker takes every k-th video and yields its clips in chunks of at most ``batch_size`` (uint8).

    Items: ``{"video", "status", "plan", "first", "clips", "indices", "last"}`` for scored chunks
    (``clips``: float (N, 3, T, S, S), the model's input as :class:`~mer.data.clip.ClipTransform`
    builds it from the model's ``spec``), ``{"video", "status", "reason", "last": True}`` (and the
    plan) for a video with nothing to score.
    """

    def __init__(
        self,
        videos: list[Path],
        *,
        sampler: ClipSampler,
        spec: ClipSpec,
        face: dict,
        spotting: SpottingConfig,
        batch_size: int,
        frames_fps: float,
        cache: Path,
        records_by_video: dict | None = None,
    ) -> None:
        self.videos, self.sampler, self.spec = videos, sampler, spec
        self.face, self.spotting, self.batch_size, self.frames_fps = (
            dict(face),
            spotting,
            max(1, int(batch_size)),
            float(frames_fps),
        )
        self.cache, self.records_by_video = Path(cache), records_by_video

    def plan(self, video: Path) -> VideoPlan:
        if self.records_by_video is not None:
            return plan_from_records(video, self.records_by_video[str(video)], face=self.face)
        key = plan_cache_key(video, {"face": self.face, "spotting": vars(self.spotting), "fps": self.frames_fps})
        plan = load_cached_plan(self.cache, key)
        if plan is None:
            plan = spot_video(video, face=self.face, spotting=self.spotting, folder_fps=self.frames_fps)
            save_cached_plan(self.cache, key, plan)
        return plan

    def __iter__(self) -> Iterator[dict]:
        import cv2

        cv2.setNumThreads(1)  # parallel across videos, not inside a frame
        info = get_worker_info()
        mine = self.videos if info is None else self.videos[info.id :: info.num_workers]
        step = self.batch_size
        transform = ClipTransform(self.spec, train=False)
        for video in mine:
            try:
                if not video.exists():
                    raise FileNotFoundError("missing file")
                plan = self.plan(video)
                if plan.status != "ok":
                    yield {"video": str(video), "status": plan.status, "reason": plan.reason, "plan": plan, "last": True}
                    continue
                with open_video(video, "pyav", fps=plan.fps) as source:
                    for start in range(0, len(plan.candidates), step):
                        part = plan.candidates[start : start + step]
                        margin = self.face.get("margin") or self.spec.face_margin  # the user's, else the training framing
                        frames, indices = cut_clips(source, video, plan, part, self.sampler, self.spec.source_side, margin)
                        clips = torch.stack([transform(f) for f in frames])  # (N, 3, T, S, S)
                        yield {
                            "video": str(video),
                            "status": "ok",
                            "plan": plan,
                            "first": start,
                            "clips": clips,
                            "indices": indices,
                            "last": start + step >= len(plan.candidates),
                        }
            except Exception as exc:  # a broken file: one error row, the batch goes on
                reason = " ".join(str(exc).split()) or type(exc).__name__
                yield {"video": str(video), "status": "error", "reason": reason.replace(f"{video}: ", ""), "last": True}
