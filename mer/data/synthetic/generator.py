"""The synthetic DFME-style data set: one clip per (subject, clip), written as mp4 or frame folders,
with annotations.csv (``dfme`` format), meta.json and, last, a DONE marker.

    annotations = generate("/tmp/syn", n_subjects=4, clips_per_subject=3)   # -> /tmp/syn/annotations.csv

Each clip is one subject, one event (a partial AU prototype of its emotion) at a random place in a
longer clip, blinks and nuisances. Randomness is per (subject, clip) from ``SeedSequence(seed,
spawn_key=...)``, so a seed gives the same bytes whatever the number of workers.
"""

from __future__ import annotations

import csv
import json
import math
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from mer.data.aus import format_aus
from mer.data.labels import dfme7
from mer.data.synthetic.draw import FaceLayers, render_face
from mer.data.synthetic.emotions import class_counts, sample_aus
from mer.data.synthetic.face import sample_identity
from mer.data.synthetic.render import Event, render_video, sample_blinks
from mer.data.synthetic.settings import GENERATOR_VERSION, SyntheticSettings, make_settings

COLUMNS = ("subject", "clip", "path", "onset", "apex", "offset", "emotion", "aus", "fps", "n_frames")


@dataclass(frozen=True)
class ClipTask:
    subject: int  # 0-based
    clip: int  # 0-based within the subject
    emotion: str
    settings: SyntheticSettings

    @property
    def subject_name(self) -> str:
        return f"sub{self.subject + 1:02d}"

    @property
    def clip_name(self) -> str:
        return f"{self.subject_name}_{self.clip + 1:02d}"


def sample_timing(
    rng: np.random.Generator, *, fps: float, clip_seconds: float, min_ms: float, max_ms: float
) -> tuple[int, int, int, int]:
    """``(n_frames, onset, apex, offset)`` of a clip: an event of 40-500 ms (skewed short, like
    real MEs), apex in the first 25-60% of it, placed at random in a clip it covers < 45% of."""
    duration_ms = min_ms + (max_ms - min_ms) * rng.beta(1.3, 3.0)
    span = max(2, int(round(duration_ms * fps / 1000)))  # offset - onset, frames
    apex_at = min(max(int(round(rng.uniform(0.25, 0.6) * span)), 1), span - 1)
    n_frames = max(int(round(clip_seconds * fps)), math.ceil((span + 1) / 0.45))
    margin = max(1, int(round(0.01 * fps)))
    onset = int(rng.integers(margin, n_frames - span - margin))
    return n_frames, onset, onset + apex_at, onset + span


@lru_cache(maxsize=4)
def subject_layers(seed: int, subject: int, size: int) -> FaceLayers:
    """The drawn face of a subject (cached: a worker renders its subjects' clips in a row)."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, subject)))
    return render_face(sample_identity(rng), size)


def render_clip(task: ClipTask) -> tuple[np.ndarray, dict]:
    """Frames uint8 (T, S, S, 3) and the annotation (positions 0-based) of one clip."""
    st = task.settings
    rng = np.random.default_rng(np.random.SeedSequence(st.seed, spawn_key=(1, task.subject, task.clip)))
    aus = sample_aus(task.emotion, rng, keep=st.au_keep, extra=st.extra_au)
    weights = tuple(float(w) for w in rng.uniform(0.6, 1.0, len(aus)))
    intensity = float(rng.uniform(0.6, 1.0))
    n_frames, onset, apex, offset = sample_timing(
        rng, fps=st.fps, clip_seconds=st.clip_seconds, min_ms=st.min_ms, max_ms=st.max_ms
    )
    blinks = sample_blinks(n_frames, st.fps, st.blink_rate, rng)
    event = Event(onset, apex, offset, aus, intensity=intensity, weights=weights, emotion=task.emotion)
    layers = subject_layers(st.seed, task.subject, st.size)
    frames = render_video(layers, [event], n_frames, st.fps, amplitude=st.amplitude, blinks=blinks, nuisance=st.nuisance, rng=rng)
    # Label noise from its own stream, so switching it on changes labels, not videos.
    noise_rng = np.random.default_rng(np.random.SeedSequence(st.seed, spawn_key=(2, task.subject, task.clip)))
    label = task.emotion
    if noise_rng.random() < st.label_noise:
        others = [c for c in dfme7().classes if c != task.emotion]
        label = others[int(noise_rng.integers(len(others)))]
    row = dict(
        subject=task.subject_name,
        clip=task.clip_name,
        onset=onset,
        apex=apex,
        offset=offset,
        emotion=label,
        true_emotion=task.emotion,
        aus=format_aus(aus),
        fps=st.fps,
        n_frames=n_frames,
    )
    return frames, row


def _write_clip(task_and_dir: tuple[ClipTask, str]) -> dict:
    """Render one clip, write it, return its annotation row (frame cells as the file will say)."""
    task, out_dir = task_and_dir
    frames, row = render_clip(task)
    st = task.settings
    if st.as_frames:
        from mer.data.video import write_frame_folder

        rel = f"{task.subject_name}/{task.clip_name}"
        folder = Path(out_dir) / rel
        if folder.exists():
            shutil.rmtree(folder)
        write_frame_folder(folder, frames, pattern="img{}.jpg", start=1, quality=95)
        for key in ("onset", "apex", "offset"):  # frame folders are annotated by file number
            row[key] += 1
    else:
        from mer.data.video import write_video

        rel = f"{task.subject_name}/{task.clip_name}.mp4"
        write_video(Path(out_dir) / rel, frames, st.fps, crf=st.crf, options={"threads": "1"})
    row["path"] = rel
    return row


# ---- the data set --------------------------------------------------------------------------


def plan_clips(settings: SyntheticSettings) -> list[ClipTask]:
    """Every clip's subject and emotion: per-class counts by largest remainder, shuffled over subjects."""
    st = settings
    total = st.n_subjects * st.clips_per_subject
    counts = class_counts(total, st.imbalance)
    labels = [emotion for emotion, k in counts.items() for _ in range(k)]
    rng = np.random.default_rng(np.random.SeedSequence(st.seed, spawn_key=(3,)))
    labels = [labels[i] for i in rng.permutation(total)]
    return [
        ClipTask(s, c, labels[s * st.clips_per_subject + c], st)
        for s in range(st.n_subjects)
        for c in range(st.clips_per_subject)
    ]


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # parallel across clips, not inside them


def _format_cell(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_main_guard() -> None:
    """Fail clearly, rather than wait forever on the cache lock, when a worker re-runs the caller's script."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise RuntimeError(
            "mer.data.synthetic was called while a worker process was starting: the workers re-import "
            'the main script, so put the call under `if __name__ == "__main__":`'
        )


def generate(out_dir: str | os.PathLike, **settings) -> Path:
    """Write the clips, ``annotations.csv`` (dfme format), ``meta.json`` and, last, ``DONE`` to
    ``out_dir``; return the path of annotations.csv. Options: the fields of :class:`SyntheticSettings`."""
    st = make_settings(**settings)
    check_main_guard()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "DONE").unlink(missing_ok=True)  # a folder being (re)written is not done
    tasks = plan_clips(st)
    workers = max(1, min(st.workers or os.cpu_count() or 1, len(tasks)))
    jobs = [(t, str(out)) for t in tasks]
    started = time.perf_counter()
    if workers == 1:
        import cv2

        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)  # as in the workers: OpenCV 4's threaded warps round differently
        try:
            rows = [_write_clip(j) for j in jobs]
        finally:
            cv2.setNumThreads(threads)
    else:
        # spawn: safe when the caller has threads (torch, cv2) that fork would copy mid-state;
        # an executor, unlike Pool, fails rather than respawning workers that die at start.
        chunk = max(1, min(st.clips_per_subject, len(jobs) // (workers * 4)))
        try:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker) as pool:
                rows = list(pool.map(_write_clip, jobs, chunksize=chunk))
        except BrokenProcessPool as exc:
            raise RuntimeError(
                f"a synthetic data worker died ({exc}); if the error above says a worker re-ran your script, "
                'put the call under `if __name__ == "__main__":`'
            ) from None
    seconds = time.perf_counter() - started

    annotations = out / "annotations.csv"
    with open(annotations, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([_format_cell(row[c]) for c in COLUMNS])
    meta = {
        "generator": "mer.data.synthetic",
        "generator_version": GENERATOR_VERSION,
        "settings": st.data_settings(),
        "n_clips": len(rows),
        "class_counts": {e: sum(r["true_emotion"] == e for r in rows) for e in dfme7().classes},
        "label_counts": {e: sum(r["emotion"] == e for r in rows) for e in dfme7().classes},
        "seconds": round(seconds, 2),
        "workers": workers,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    (out / "DONE").write_text("")
    return annotations
