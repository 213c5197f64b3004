"""Score folders of recordings: ``python -m mer.score checkpoint=RUN/best.pt input=DIR output=results.csv``.

For every video (mp4, avi, mov, mkv, ... or a frame folder, searched recursively; sorted):

    pass 1 (a DataLoader worker)  stream-decode, track the face, spot candidate intervals
                                  (or take them from ``annotations=... format=...``)
    pass 2 (the same worker)      decode only the sampled frames of each interval, crop the face
    main process                  batch clips from many videos through the model, write each
                                  video's rows when its last clip is scored

One row per interval: video, status (ok / no_face / no_event / error), reason, onset / apex /
offset in frames and seconds, the spotter's score, the emotion, a probability per class and per AU.
``frames_output=...`` adds a per-frame AU table. A broken file gets an ``error`` row and the batch
goes on; the run ends with a summary and exits 1 when any video failed. Re-running the same
command skips finished videos (``overwrite=true`` redoes them). ``shard=I/N`` (or torchrun's
RANK / WORLD_SIZE) scores every N-th video into ``<output>.part-I-of-N``; ``merge=<output>`` joins
the parts.
"""

from __future__ import annotations

import glob as globlib
import logging
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from mer.data.video import VIDEO_SUFFIXES
from mer.engine.metrics import PROBABILITY_DECIMALS
from mer.scoring.jobs import VideoJobs
from mer.scoring.outputs import ResultWriter, merge_parts, shard_path
from mer.scoring.pipeline import VideoPlan, is_frame_folder
from mer.scoring.spotting import SpottingConfig

if TYPE_CHECKING:
    from mer.scoring.models import ScoringModel

# Light imports only at module level: spawned DataLoader workers import the main module (this one,
# under ``python -m mer.score``) before they unpickle their VideoJobs; models, training code and
# pandas are imported where they are used, in the main process.

log = logging.getLogger("mer.score")


# ---- inputs ---------------------------------------------------------------------------------------


def find_videos(spec) -> list[Path]:
    """Videos and frame folders from a folder (recursive), a glob, a file, a list file (.txt), or a list."""
    items = list(spec) if isinstance(spec, (list, tuple)) or OmegaConf.is_list(spec) else str(spec).split(",")
    found: set[Path] = set()
    for item in (str(i).strip() for i in items):
        path = Path(item)
        if path.suffix.lower() == ".txt" and path.is_file():
            found.update(find_videos([line for line in path.read_text().splitlines() if line.strip()]))
        elif path.is_dir():
            found.update(_walk(path))
        elif any(ch in item for ch in "*?["):
            for match in globlib.glob(item, recursive=True):
                found.update(_walk(Path(match)) if Path(match).is_dir() else [Path(match)])
        else:
            found.add(path)  # a file (a missing one becomes an error row, not a crash)
    return sorted(found, key=str)


def _walk(folder: Path) -> Iterator[Path]:
    if is_frame_folder(folder):
        yield folder
        return
    for entry in sorted(folder.iterdir()):
        if entry.is_dir():
            yield from _walk(entry)
        elif entry.suffix.lower() in VIDEO_SUFFIXES:
            yield entry


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    """``"I/N"``, else torchrun / job-array RANK and WORLD_SIZE, else None."""
    if spec:
        try:
            index, count = (int(v) for v in str(spec).split("/"))
        except ValueError:
            raise ValueError(f"shard={spec!r}: expected I/N, e.g. shard=0/4") from None
        if not 0 <= index < count:
            raise ValueError(f"shard={spec!r}: I must be in 0..N-1")
        return index, count
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return int(os.environ.get("RANK", "0")), int(os.environ["WORLD_SIZE"])
    return None


# ---- the main process (the workers' dataset is mer.scoring.jobs.VideoJobs) ---------------------


def columns(model: ScoringModel) -> tuple[list[str], list[str]]:
    rows = ["video", "status", "reason", "interval", "clip_id", "onset", "apex", "offset", "onset_s", "apex_s", "offset_s",
            "spot_score", "emotion", *[f"p_{c}" for c in model.class_names], "aus", *[f"p_AU{a}" for a in model.au_names]]  # fmt: skip
    frames = ["video", "interval", "frame", "time_s", *[f"p_AU{a}" for a in model.au_names]]
    return rows, frames


def normalise(clips: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (B, T, S, S, 3) -> float (B, 3, T, S, S), normalised as in training."""
    x = torch.from_numpy(np.ascontiguousarray(clips)).to(device).permute(0, 4, 1, 2, 3).float().div_(255.0)
    from mer.data.transforms import MEAN, STD

    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1, 1)
    return (x - mean) / std


class Scorer:
    """Gathers chunks into model batches and writes each video once all its clips are scored."""

    def __init__(self, model: ScoringModel, writer: ResultWriter, device: torch.device, batch_size: int, frames: bool) -> None:
        self.model, self.writer, self.device, self.batch_size, self.frames = model, writer, device, batch_size, frames
        self.pending: list[dict] = []
        self.rows: dict[str, list[dict]] = defaultdict(list)
        self.frame_rows: dict[str, list[dict]] = defaultdict(list)
        self.counts = {"ok": 0, "no_face": 0, "no_event": 0, "error": 0}

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
        batch = np.concatenate([i["clips"] for i in self.pending])
        # At most batch_size clips per model call (a worker's chunk may overshoot the gathered count).
        parts = [self.model(normalise(batch[k : k + self.batch_size], self.device)) for k in range(0, len(batch), self.batch_size)]
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
            row = {"video": item["video"], "status": "ok", "reason": "", "interval": k, "clip_id": c.clip_id,
                   "onset": c.onset, "apex": c.apex, "offset": c.offset, "spot_score": round(c.score, 6),
                   "onset_s": round(c.times[0], 4), "apex_s": round(c.times[1], 4), "offset_s": round(c.times[2], 4),
                   "emotion": names[int(np.argmax(probs))], "aus": present[j]}  # fmt: skip
            row.update({f"p_{name}": round(float(p), 6) for name, p in zip(names, probs)})
            row.update({f"p_AU{a}": float(p) for a, p in zip(aus, np.round(out["clip_aus"][j], PROBABILITY_DECIMALS))})  # as present_aus read them
            self.rows[item["video"]].append(row)
            if self.frames:
                for t, frame in enumerate(item["indices"][j]):
                    frame_row = {"video": item["video"], "interval": k, "frame": int(frame), "time_s": round(float(frame) / plan.fps, 4)}
                    frame_row.update({f"p_AU{a}": round(float(p), 6) for a, p in zip(aus, out["frame_aus"][j][t])})
                    self.frame_rows[item["video"]].append(frame_row)

    def _finish(self, video: str, status: str, rows: list[dict], frame_rows: list[dict]) -> None:
        self.writer.write_video(video, status, rows, frame_rows)
        self.counts[status] += 1
        if status == "error":
            log.warning("%s: %s", video, rows[0].get("reason", ""))


def score(cfg: DictConfig) -> dict:
    """Score the inputs; returns counts (ok, no_face, no_event, error, skipped)."""
    from mer.data.build import build_clip_sampler
    from mer.data.formats import read_annotations
    from mer.data.synthetic.cache import default_cache_dir
    from mer.engine.trainer import select_device
    from mer.scoring.models import load_scoring_model

    device = select_device(cfg.device)
    model = load_scoring_model(cfg.checkpoint, device)
    records_by_video = None
    if cfg.annotations:
        records = read_annotations(cfg.annotations, format=cfg.format, root=cfg.root, label_map=cfg.label_map or "dfme7", strict=False)
        records_by_video = defaultdict(list)
        for r in records:
            records_by_video[r.path].append(r)
        videos = sorted((Path(p) for p in records_by_video), key=str)
    else:
        videos = find_videos(cfg.input)
    shard = parse_shard(cfg.shard)
    if shard is not None:
        videos = videos[shard[0] :: shard[1]]
    output = shard_path(Path(cfg.output), shard)
    frames_output = shard_path(Path(cfg.frames_output), shard) if cfg.frames_output else None
    row_columns, frame_columns = columns(model)
    writer = ResultWriter(output, row_columns, frames_path=frames_output, frame_columns=frame_columns, overwrite=cfg.overwrite)
    retry = {"error"} if cfg.retry_failed else set()
    todo = [v for v in videos if writer.done.get(str(v)) is None or writer.done[str(v)] in retry]
    skipped = len(videos) - len(todo)
    log.info("%d videos (%d already done) -> %s", len(videos), skipped, output)
    scorer = Scorer(model, writer, device, int(cfg.batch_size), frames_output is not None)
    if todo:
        cache = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else default_cache_dir() / "score"
        jobs = VideoJobs(todo, sampler=build_clip_sampler(model.config.clip_sampler), size=int(model.config.data.crop_size),
                         face=OmegaConf.to_container(cfg.face, resolve=True),
                         spotting=SpottingConfig(**OmegaConf.to_container(cfg.spotting, resolve=True)),
                         batch_size=int(cfg.batch_size), frames_fps=float(cfg.frames_fps), cache=cache,
                         records_by_video=records_by_video)  # fmt: skip
        workers = min(int(cfg.num_workers), len(todo))
        # Workers are spawned, not forked: the main process already holds the model's thread pools
        # (ONNX Runtime, TorchScript, OpenMP), and a fork of a process with live threads can crash.
        loader = DataLoader(jobs, batch_size=None, num_workers=workers, prefetch_factor=2 if workers else None,
                            multiprocessing_context=str(cfg.worker_start) if workers else None)  # fmt: skip
        with tqdm(total=len(todo), desc="videos", unit="video", dynamic_ncols=True, disable=not cfg.progress) as bar:
            for item in loader:
                before = sum(scorer.counts.values())
                scorer.add({k: (v.numpy() if torch.is_tensor(v) else v) for k, v in item.items()})
                bar.update(sum(scorer.counts.values()) - before)
                bar.set_postfix(failed=scorer.counts["error"], refresh=False)
            before = sum(scorer.counts.values())
            scorer.flush()
            bar.update(sum(scorer.counts.values()) - before)
    writer.finish()
    summary = dict(scorer.counts, skipped=skipped)
    done = summary["ok"] + summary["no_face"] + summary["no_event"]
    log.info("done %d (ok %d, no_face %d, no_event %d), skipped %d, failed %d -> %s",
             done, summary["ok"], summary["no_face"], summary["no_event"], skipped, summary["error"], output)  # fmt: skip
    print(f"mer.score: done {done}, skipped {skipped}, failed {summary['error']} -> {output}", file=sys.stderr)
    return summary


@hydra.main(version_base="1.3", config_path="configs", config_name="score")
def main(cfg: DictConfig) -> None:
    if cfg.merge:
        path = merge_parts(Path(cfg.merge))
        print(f"mer.score: merged into {path}", file=sys.stderr)
        return
    missing = [k for k in ("checkpoint", "input") if not cfg.get(k) and not (k == "input" and cfg.annotations)]
    if missing:
        raise SystemExit(f"mer.score: set {' and '.join(missing)}=... (see docs/scoring.md)")
    summary = score(cfg)
    if summary["error"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
