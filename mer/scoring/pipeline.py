"""Per video: find the face and the candidate intervals in one streaming pass, then cut the clips.

    pass 1  decode every frame once, grey, in order (never the whole video in memory)
            -> face box tracked and smoothed (FaceTracker) -> 64 px face crop -> MotionSpotter
            -> intervals (onset, apex, offset) and the face box at each apex
    pass 2  per interval: the model's sampler picks frame indices -> only those frames decoded
            -> cropped with the apex's box -> uint8 clip (T, S, S, 3)

The result of pass 1 is cached per video file (path, size, mtime and the settings), so scoring
the same recordings with another model skips it. With an annotation file there is no pass 1:
the annotated intervals are used and the face is found on the apex frame.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mer.data.faces import FACE_MARGIN, FaceBox, FaceDetector, FaceTracker, crop_face
from mer.data.records import ClipRecord
from mer.data.samplers import ClipSampler
from mer.data.video import IMAGE_SUFFIXES, VideoError, open_video

SPOT_CROP = 64  # face crops the spotter sees


@dataclass
class Candidate:
    """One interval to score, in frame positions of its video, with the face box to crop it by."""

    onset: int
    apex: int
    offset: int
    score: float = 0.0
    box: list[float] | None = None  # FaceBox as [x, y, w, h]; None: the whole frame
    clip_id: str = ""
    times: list[float] = field(default_factory=list)  # seconds of onset, apex, offset


@dataclass
class VideoPlan:
    """What pass 1 (or the annotation) says about a video: where to look and what to cut."""

    status: str  # ok | no_face | no_event
    fps: float
    n_frames: int
    candidates: list[Candidate]
    reason: str = ""


def is_frame_folder(path: Path) -> bool:
    return path.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir())


def _gray_frames(path: Path, folder_fps: float) -> tuple[float, int, Iterator[tuple[np.ndarray, float]]]:
    """(fps, frame count estimate, iterator of (grey frame, time in s)) in presentation order."""
    if path.is_dir():
        source = open_video(path, fps=folder_fps)
        count = len(source)

        def folder() -> Iterator[tuple[np.ndarray, float]]:
            for start in range(0, count, 64):  # windows: flat memory
                for k, frame in enumerate(source.get_frames(range(start, min(start + 64, count)))):
                    yield frame.mean(axis=2).astype(np.uint8), (start + k) / folder_fps

        return folder_fps, count, folder()
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoError(path, f"not a video or corrupt: {getattr(exc, 'strerror', None) or exc}") from None
    if not container.streams.video:
        container.close()
        raise VideoError(path, "not a video: the file has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else 30.0
    # What the container promises: its frame count, else its duration. Threaded decoding stops
    # quietly at damage (a truncated file whose index is at the front), so the decoded count is
    # compared with this at the end.
    promised = int(stream.frames or 0)
    if not promised and stream.duration and stream.time_base:
        promised = int(float(stream.duration * stream.time_base) * fps)

    def decode() -> Iterator[tuple[np.ndarray, float]]:
        decoded = 0
        try:
            for i, frame in enumerate(container.decode(stream)):
                decoded = i + 1
                yield frame.to_ndarray(format="gray"), float(frame.time) if frame.time is not None else i / fps
        except av.error.FFmpegError as exc:
            raise VideoError(path, f"decoding failed: {getattr(exc, 'strerror', None) or exc}") from None
        finally:
            container.close()
        if promised and decoded < 0.98 * promised - 1:
            raise VideoError(
                path, f"the stream ends at frame {decoded} of the {promised} its container declares: truncated or damaged"
            )

    return fps, promised, decode()


def _probe_frames(path: Path, probes: int, folder_fps: float) -> Iterator[np.ndarray]:
    """About ``probes`` frames spread over the video, each found by a seek (no demux of the whole file)."""
    if path.is_dir():
        with open_video(path, fps=folder_fps) as source:  # a folder: listing it is the index
            n = len(source)
            for i in np.linspace(0, n - 1, min(probes, n)).round().astype(int):
                yield source.get_frames([int(i)])[0]
        return
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        duration = float(stream.duration * stream.time_base) if stream.duration else float(container.duration or 0) / av.time_base
        for fraction in np.linspace(0.0, 0.9, probes):
            if fraction > 0:
                if duration <= 0 or stream.time_base is None:
                    return
                container.seek(int(fraction * duration / stream.time_base), stream=stream)  # the keyframe before
            frame = next(container.decode(stream), None)
            if frame is not None:
                yield frame.to_ndarray(format="rgb24")


def _first_box(path: Path, detector: FaceDetector, folder_fps: float, probes: int = 5) -> FaceBox | None:
    """A face box from a few frames spread over the video, for the frames before tracking finds one."""
    found = []
    try:
        for frame in _probe_frames(path, probes, folder_fps):
            box = detector(frame)
            if box is not None:
                found.append(box)
    except Exception:  # noqa: BLE001 - a video pass 1 cannot read reports its own error; this is only a hint
        pass
    if not found:
        return None
    # The box most of the probes agree on (a still subject), not the first detection anywhere.
    return max(found, key=lambda b: sum(b.near(o) for o in found))


def spot_video(path: Path, *, face: dict, spotting, folder_fps: float = 30.0) -> VideoPlan:
    """Pass 1: face track and candidate intervals of one video."""
    from mer.scoring.spotting import MotionSpotter

    detector = FaceDetector() if face.get("enabled", True) else None
    start_box = _first_box(path, detector, folder_fps) if detector is not None else None
    fps, _, frames = _gray_frames(path, folder_fps)
    tracker = None
    if detector is not None:
        every = max(1, round(face.get("detect_every_s", 0.25) * fps))
        tracker = FaceTracker(
            detector, every=every, smoothing=face.get("smoothing", 0.5), deadband=face.get("deadband", 0.1), start=start_box
        )
    margin = face.get("margin") or FACE_MARGIN
    spotter = MotionSpotter(fps, spotting, crop_size=SPOT_CROP)
    boxes: list[FaceBox | None] = []
    times: list[float] = []
    for i, (gray, t) in enumerate(frames):
        box = tracker.update(i, gray) if tracker else FaceBox(0, 0, gray.shape[1], gray.shape[0])
        box = box or start_box
        moved = bool(boxes) and box != boxes[-1]  # the crop shifts: the spotter must not read that as motion
        boxes.append(box)
        times.append(t)
        if box is not None:
            spotter.push(crop_face(gray, box, SPOT_CROP, margin if tracker else 1.0), moved=moved)
        else:  # no face yet anywhere: keep the spotter's frame count aligned
            spotter.push(np.zeros((SPOT_CROP, SPOT_CROP), np.uint8), moved=moved)
    n = len(times)
    if n == 0:
        raise VideoError(path, "no frames could be decoded")
    if tracker is not None and tracker.box is None:
        return VideoPlan("no_face", fps, n, [], "no face found")
    candidates = []
    for interval in spotter.finish():
        onset, apex, offset = (min(max(int(v), 0), n - 1) for v in (interval.onset, interval.apex, interval.offset))
        box = boxes[apex] if tracker is not None else None  # no face tracking: the whole frame, as it is
        candidates.append(
            Candidate(
                onset,
                apex,
                offset,
                float(interval.score),
                box.as_list() if box else None,
                times=[times[onset], times[apex], times[offset]],
            )
        )
    if not candidates:
        return VideoPlan("no_event", fps, n, [], "no micro-expression candidate above the threshold")
    return VideoPlan("ok", fps, n, candidates)


def plan_from_records(path: Path, records: Sequence[ClipRecord], *, face: dict) -> VideoPlan:
    """The annotated intervals of one video; the face found on each apex frame."""
    detector = FaceDetector() if face.get("enabled", True) else None
    first = records[0]
    candidates = []
    with open_video(path, "pyav", fps=first.fps) as source:
        n = len(source)
        for r in records:
            box = None
            if detector is not None:
                box = detector(source.get_frames([r.apex])[0]) or detector(source.get_frames([r.onset])[0])
                if box is None:
                    continue
            times = [i / r.fps for i in (r.onset, r.apex, r.offset)]
            candidates.append(Candidate(r.onset, r.apex, r.offset, 1.0, box.as_list() if box else None, r.clip_id, times))
    if not candidates:
        return VideoPlan("no_face", first.fps, n, [], "no face found at the annotated apexes")
    return VideoPlan("ok", first.fps, n, candidates)


def cut_clips(
    source, path: Path, plan: VideoPlan, candidates: Sequence[Candidate], sampler: ClipSampler, size: int, margin: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pass 2: uint8 clips (N, T, S, S, 3) and their frame indices (N, T) for ``candidates``.

    A candidate with a face box is cropped to the square around it (``margin``) at ``size`` px, as
    training's face crop does; one without (face tracking off) keeps its whole frames (N, T, H, W, 3),
    which the model's ClipTransform resizes and centre-crops as evaluation does.
    ``source`` is the video opened once for all its chunks (``open_video(path, "pyav", fps=plan.fps)``):
    opening builds the frame index, a demux of the whole file.
    """
    clips, all_indices = [], []
    for c in candidates:
        record = ClipRecord(
            "",
            c.clip_id or f"{path.name}@{c.apex}",
            str(path),
            c.onset,
            c.apex,
            c.offset,
            "",
            0,
            fps=plan.fps,
            n_frames=plan.n_frames,
        )
        indices = sampler(record, train=False)
        frames = source.get_frames(indices)
        if c.box is not None:
            frames = np.stack([crop_face(f, FaceBox(*c.box), size, margin) for f in frames])
        clips.append(frames)
        all_indices.append(indices)
    return np.stack(clips), np.asarray(all_indices, dtype=np.int64)


def plan_cache_key(path: Path, settings: dict) -> str:
    stat = path.stat()
    text = json.dumps(
        {
            "path": str(path.resolve()),
            "size": stat.st_size if path.is_file() else 0,
            "mtime": stat.st_mtime_ns,
            "settings": settings,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def load_cached_plan(cache_dir: Path | None, key: str) -> VideoPlan | None:
    if cache_dir is None or not (cache_dir / f"{key}.json").exists():
        return None
    data = json.loads((cache_dir / f"{key}.json").read_text())
    return VideoPlan(data["status"], data["fps"], data["n_frames"], [Candidate(**c) for c in data["candidates"]], data["reason"])


def save_cached_plan(cache_dir: Path | None, key: str, plan: VideoPlan) -> None:
    if cache_dir is None:
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".{key}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(asdict(plan)))
    tmp.replace(cache_dir / f"{key}.json")
