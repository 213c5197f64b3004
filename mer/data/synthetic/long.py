"""Long synthetic recordings for spotting: one subject, several micro-expressions at known frames,
blinks as distractors, head drift, flicker and noise, written to mp4 one frame at a time.

    events = write_long_video("/tmp/long.mp4", seconds=60, fps=30, n_events=6, canvas=(640, 360), seed=3)
    events[0]                       # TrueEvent(onset=412, apex=415, offset=419, emotion='fear', aus='1+4+5')
    info = read_long_video_info("/tmp/long.mp4")   # the sidecar /tmp/long.mp4.events.json

Frame positions are 0-based and inclusive. The intensity profile of an event is 0 at its onset and
offset frames and largest at its apex (see :class:`~mer.data.synthetic.render.Event`). The sidecar
also gives the face square's position in the frame, so a spotter can be evaluated on exact crops.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from mer.data.aus import format_aus
from mer.data.synthetic.draw import render_face
from mer.data.synthetic.emotions import PROTOTYPES, sample_aus
from mer.data.synthetic.face import sample_identity
from mer.data.synthetic.render import Blink, Canvas, Event, Nuisance, iter_video, sample_blinks
from mer.data.video import write_video

MIN_GAP_S = 1.0  # between one event's offset and the next one's onset
EDGE_S = 0.5  # no event starts or ends closer than this to the video's ends


@dataclass(frozen=True)
class TrueEvent:
    """A rendered micro-expression: frame positions (0-based, inclusive), its emotion and AUs."""

    onset: int
    apex: int
    offset: int
    emotion: str
    aus: str  # canonical AU string, e.g. "1+2+5"


@dataclass(frozen=True)
class LongVideoInfo:
    """The sidecar of a long video: what was rendered where."""

    fps: float
    n_frames: int
    width: int
    height: int
    face: tuple[int, int, int]  # the face square (x, y, size) in the frame
    events: list[TrueEvent]
    blinks: list[tuple[int, int]]  # (first, last) frame each blink's lids move
    seed: int


def sidecar_path(path: str | os.PathLike) -> Path:
    """``video.mp4`` -> ``video.mp4.events.json``."""
    return Path(f"{os.fspath(path)}.events.json")


def sample_events(
    n_frames: int, fps: float, n_events: int, rng: np.random.Generator, *, min_ms: float = 40.0, max_ms: float = 500.0
) -> list[Event]:
    """``n_events`` non-overlapping events, >= 1 s apart and >= 0.5 s from the ends, sorted.

    Each: a random emotion, a random part of its prototype (:func:`sample_aus`), intensity and AU
    weights in 0.6-1, a duration of 40-500 ms skewed short (like real MEs) but >= 3 frames
    (onset, apex, offset distinct), the apex 25-60% of the way through.
    """
    emotions = sorted(PROTOTYPES)
    spans = []  # offset - onset, frames
    for _ in range(n_events):
        duration_ms = min_ms + (max_ms - min_ms) * rng.beta(1.3, 3.0)
        spans.append(max(2, int(round(duration_ms * fps / 1000))))
    gap, edge = math.ceil(MIN_GAP_S * fps), math.ceil(EDGE_S * fps)
    # Spans + gaps are laid end to end, then the free frames are shared out at random.
    free = n_frames - 2 * edge - sum(s + 1 for s in spans) - gap * max(n_events - 1, 0)
    if free < 0:
        raise ValueError(
            f"{n_events} events of these durations do not fit {n_frames} frames at {fps} fps "
            f"with {MIN_GAP_S} s between them; make the video longer or ask for fewer events"
        )
    cuts = np.sort(rng.integers(0, free + 1, n_events))
    extra = np.diff(np.concatenate([[0], cuts]))  # free frames before each event
    events, start = [], edge
    for span, before in zip(spans, extra):
        onset = start + int(before)
        apex = onset + min(max(int(round(rng.uniform(0.25, 0.6) * span)), 1), span - 1)
        emotion = emotions[int(rng.integers(len(emotions)))]
        aus = sample_aus(emotion, rng)
        weights = tuple(float(w) for w in rng.uniform(0.6, 1.0, len(aus)))
        events.append(
            Event(onset, apex, onset + span, aus, intensity=float(rng.uniform(0.6, 1.0)), weights=weights, emotion=emotion)
        )
        start = onset + span + 1 + gap
    return events


def _background(width: int, height: int, colours, rng: np.random.Generator) -> np.ndarray:
    """A vertical gradient between the subject's two backdrop colours with a faint smooth texture
    (a real wall, not a flat fill that a face detector could never confuse with anything)."""
    top, bottom = np.asarray(colours[0], np.float32), np.asarray(colours[1], np.float32)
    w = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    image = np.broadcast_to(top * (1 - w) + bottom * w, (height, width, 3)).copy()
    texture = cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0), 6)
    image += (texture / (texture.std() + 1e-6) * 6)[..., None]
    return np.clip(image, 0, 255)


def write_long_video(
    path: str | os.PathLike,
    *,
    seconds: float = 30.0,
    fps: float = 30.0,
    n_events: int = 5,
    size: int = 112,
    canvas: tuple[int, int] | None = None,
    seed: int = 0,
    blink_rate: float = 0.3,
    amplitude: float = 3.0,
    nuisance: Nuisance | None = None,
    codec: str = "libx264",
    crf: int = 18,
) -> list[TrueEvent]:
    """Render and encode a long recording of one subject; write its sidecar; return its events.

    Args:
        path: the video file (mp4); the sidecar ``<path>.events.json`` is written beside it.
        seconds, fps: length and frame rate.
        n_events: micro-expressions, see :func:`sample_events`.
        size: side of the face square in pixels.
        canvas: ``(width, height)`` of a larger frame (even numbers) holding the face square at a
            fixed position drawn from the seed, over a lightly textured backdrop; default: the square.
        seed: decides subject, events, blinks and nuisances.
        blink_rate: blinks per second (distractors: brief, local, not expressions).
        amplitude, nuisance: as :func:`~mer.data.synthetic.render.iter_video`; default nuisances.
        codec, crf: encoder (PyAV) and its quality for libx264/libx265.

    Frames are streamed to the encoder, so memory does not grow with the length (a 10-minute
    640x360 video at 30 fps is fine).
    """
    nuisance = Nuisance() if nuisance is None else nuisance
    n_frames = int(round(seconds * fps))
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7,)))
    identity = sample_identity(rng)
    layers = render_face(identity, size)
    events = sample_events(n_frames, fps, n_events, rng)
    blinks = sample_blinks(n_frames, fps, blink_rate, rng)

    if canvas is None:
        width = height = size
        place, face_xy = None, (0, 0)
    else:
        width, height = canvas
        if width < size or height < size:
            raise ValueError(f"canvas {width}x{height} is smaller than the face square ({size} px)")
        face_xy = (int(rng.integers(0, width - size + 1)), int(rng.integers(0, max(1, (height - size) // 2) + 1)))
        place = Canvas(width, height, *face_xy, background=_background(width, height, identity.backdrop, rng))
    if width % 2 or height % 2:
        raise ValueError(f"frame {width}x{height}: yuv420p needs even sides")

    frames = iter_video(
        layers, events, n_frames, fps, amplitude=amplitude, blinks=blinks, nuisance=nuisance, canvas=place, rng=rng
    )
    path = write_video(path, frames, fps, codec=codec, crf=crf)  # streamed: one frame at a time

    truth = [TrueEvent(e.onset, e.apex, e.offset, e.emotion, format_aus(e.aus)) for e in events]
    info = LongVideoInfo(
        fps=float(fps),
        n_frames=n_frames,
        width=width,
        height=height,
        face=(*face_xy, size),
        events=truth,
        blinks=[_blink_frames(b, n_frames) for b in blinks],
        seed=seed,
    )
    sidecar_path(path).write_text(json.dumps(asdict(info), indent=1) + "\n")
    return truth


def _blink_frames(blink: Blink, n_frames: int) -> tuple[int, int]:
    moving = np.flatnonzero(blink.profile(n_frames) > 0)
    return (int(moving[0]), int(moving[-1])) if moving.size else (int(blink.start), int(blink.start))


def read_long_video_info(path: str | os.PathLike) -> LongVideoInfo:
    """The sidecar of a video written by :func:`write_long_video` (give the video's path or the sidecar's)."""
    side = Path(path) if str(path).endswith(".events.json") else sidecar_path(path)
    raw = json.loads(side.read_text())
    raw["events"] = [TrueEvent(**e) for e in raw["events"]]
    raw["blinks"] = [tuple(b) for b in raw["blinks"]]
    raw["face"] = tuple(raw["face"])
    return LongVideoInfo(**raw)
