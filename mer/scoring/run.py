"""Scoring videos with a model: the code behind ``mer.predict`` and ``mer-score``.

    counts = score_videos(videos, model, sink, face={...}, spotting=SpottingConfig(), batch_size=16)

For every video (a file or a frame folder):

    pass 1 (a DataLoader worker)  stream-decode, track the face, spot candidate intervals
                                  (or take the annotated ones, ``records_by_video``)
    pass 2 (the same worker)      decode only the sampled frames of each interval, crop the face,
                                  build the model's input (mer.data.clip.ClipTransform, from the
                                  model's input spec: the same code as training and evaluation)
    this process                  batch clips from many videos through the model, hand each
                                  video's rows to ``sink`` when its last clip is scored

A sink has ``write_video(video, status, rows, frame_rows)``: :class:`RowCollector` keeps them in
memory (the Python API), :class:`mer.scoring.outputs.ResultWriter` appends them to a resumable file
(the command line).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from mer.data.aus import au_code
from mer.data.clip import ClipSpec
from mer.data.samplers import build_sampler
from mer.engine.metrics import PROBABILITY_DECIMALS
from mer.scoring.jobs import VideoJobs
from mer.scoring.pipeline import VideoPlan
from mer.scoring.spotting import SpottingConfig

if TYPE_CHECKING:
    from mer.scoring.models import ScoringModel

log = logging.getLogger("mer.score")

STATUSES = ("ok", "no_face", "no_event", "error")
FACE_COLUMNS = ("face_x", "face_y", "face_w", "face_h")


class Sink(Protocol):
    def write_video(self, video: str, status: str, rows: list[dict], frame_rows: list[dict]) -> None: ...


def columns(model: ScoringModel) -> tuple[list[str], list[str]]:
    """The columns of the interval table and of the per-frame AU table of ``model``."""
    aus = [f"p_{au_code(a)}" for a in model.au_names]
    rows = [
        "video",
        "model",  # the first 12 hex digits of the model file's sha256
        "status",
        "reason",
        "interval",
        "clip_id",
        "onset",
        "apex",
        "offset",
        "onset_s",
        "apex_s",
        "offset_s",
        "spot_score",
        *FACE_COLUMNS,
        "emotion",
        "p_emotion",
        *[f"p_{c}" for c in model.class_names],
        "aus",
        *aus,
    ]
    frames = ["video", "interval", "frame", "time_s", *aus]
    return rows, frames


class RowCollector:
    """A sink that keeps every row in memory (for a DataFrame)."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.frame_rows: list[dict] = []

    def write_video(self, video: str, status: str, rows: list[dict], frame_rows: list[dict] = ()) -> None:
        self.rows.extend(rows)
        self.frame_rows.extend(frame_rows)


class Scorer:
    """Gathers chunks into model batches and hands each video to the sink once all its clips are scored."""

    def __init__(self, model: ScoringModel, sink: Sink, batch_size: int, frames: bool) -> None:
        self.model, self.sink, self.batch_size, self.frames = model, sink, batch_size, frames
        self.pending: list[dict] = []
        self.rows: dict[str, list[dict]] = defaultdict(list)
        self.frame_rows: dict[str, list[dict]] = defaultdict(list)
        self.counts = dict.fromkeys(STATUSES, 0)

    def add(self, item: dict) -> None:
        if item["status"] != "ok":
            row = {"video": item["video"], "status": item["status"], "reason": item.get("reason", "")}
            self._finish(item["video"], item["status"], [row], [])
            return
        self.pending.append(item)
        if sum(len(i["clips"]) for i in self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        batch = torch.cat([torch.as_tensor(i["clips"]) for i in self.pending])  # (N, 3, T, S, S)
        # At most batch_size clips per model call (a worker's chunk may overshoot the gathered count).
        parts = [self.model(batch[k : k + self.batch_size]) for k in range(0, len(batch), self.batch_size)]
        out = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        offset = 0
        for item in self.pending:
            n = len(item["clips"])
            self._rows(item, {k: v[offset : offset + n] for k, v in out.items()})
            offset += n
            if item["last"]:
                video = item["video"]
                self._finish(video, "ok", self.rows.pop(video), self.frame_rows.pop(video, []))
        self.pending = []

    def _rows(self, item: dict, out: dict) -> None:
        plan: VideoPlan = item["plan"]
        names, aus = self.model.class_names, self.model.au_names
        present = self.model.present_aus(out["clip_aus"])
        for j in range(len(item["clips"])):
            k = item["first"] + j
            c = plan.candidates[k]
            probs = out["emotion"][j]
            best = int(np.argmax(probs))
            row = {
                "video": item["video"],
                "status": "ok",
                "reason": "",
                "interval": k,
                "clip_id": c.clip_id,
                "onset": c.onset,
                "apex": c.apex,
                "offset": c.offset,
                "spot_score": round(c.score, 6),
                "onset_s": round(c.times[0], 4),
                "apex_s": round(c.times[1], 4),
                "offset_s": round(c.times[2], 4),
                "emotion": names[best],
                "p_emotion": round(float(probs[best]), 6),
                "aus": present[j],
            }
            row.update(zip(FACE_COLUMNS, [round(float(v), 2) for v in c.box] if c.box else [None] * 4))
            row.update({f"p_{name}": round(float(p), 6) for name, p in zip(names, probs)})
            # rounded as present_aus read them, so p_AU >= threshold agrees with the aus cell
            row.update({f"p_{au_code(a)}": float(p) for a, p in zip(aus, np.round(out["clip_aus"][j], PROBABILITY_DECIMALS))})
            self.rows[item["video"]].append(row)
            if self.frames:
                for t, frame in enumerate(item["indices"][j]):
                    frame_row = {
                        "video": item["video"],
                        "interval": k,
                        "frame": int(frame),
                        "time_s": round(float(frame) / plan.fps, 4),
                    }
                    frame_row.update({f"p_{au_code(a)}": round(float(p), 6) for a, p in zip(aus, out["frame_aus"][j][t])})
                    self.frame_rows[item["video"]].append(frame_row)

    def _finish(self, video: str, status: str, rows: list[dict], frame_rows: list[dict]) -> None:
        for row in rows:
            row["model"] = self.model.digest[:12]
        self.sink.write_video(video, status, rows, frame_rows)
        self.counts[status] += 1
        if status == "error":
            log.warning("%s: %s", video, rows[0].get("reason", ""))


def score_videos(
    videos: Sequence[Path],
    model: ScoringModel,
    sink: Sink,
    *,
    face: dict,
    spotting: SpottingConfig,
    cache: Path,
    records_by_video: dict | None = None,
    batch_size: int = 16,
    num_workers: int = 2,
    worker_start: str = "spawn",
    frames_fps: float = 30.0,
    frames: bool = False,
    progress: bool = True,
) -> dict[str, int]:
    """Score ``videos`` with ``model``, handing each video's rows to ``sink``; returns the count of
    videos per status (ok, no_face, no_event, error)."""
    spec = ClipSpec.from_dict(model.input)
    face = dict(face)
    if face.get("margin") is None:  # frame the face as the model was trained on it
        face["margin"] = spec.face_margin
    sampler_cfg = dict(model.sampler)
    jobs = VideoJobs(
        list(videos),
        sampler=build_sampler(sampler_cfg.pop("name"), **sampler_cfg),
        spec=spec,
        face=face,
        spotting=spotting,
        batch_size=int(batch_size),
        frames_fps=float(frames_fps),
        cache=cache,
        records_by_video=records_by_video,
    )
    scorer = Scorer(model, sink, int(batch_size), frames)
    workers = min(int(num_workers), len(videos))
    # Workers are spawned, not forked: this process already holds the model's thread pools (ONNX
    # Runtime, TorchScript, OpenMP), and a fork of a process with live threads can crash.
    loader = DataLoader(
        jobs,
        batch_size=None,
        num_workers=workers,
        prefetch_factor=2 if workers else None,
        multiprocessing_context=str(worker_start) if workers else None,
    )
    with tqdm(total=len(videos), desc="videos", unit="video", dynamic_ncols=True, disable=not progress) as bar:
        for item in loader:
            before = sum(scorer.counts.values())
            scorer.add({k: (v.numpy() if torch.is_tensor(v) and k != "clips" else v) for k, v in item.items()})
            bar.update(sum(scorer.counts.values()) - before)
            bar.set_postfix(failed=scorer.counts["error"], refresh=False)
        before = sum(scorer.counts.values())
        scorer.flush()
        bar.update(sum(scorer.counts.values()) - before)
    return scorer.counts
