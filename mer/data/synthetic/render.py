"""Render a face video: events (AU combinations over time), blinks and nuisances at known frames.

    layers = render_face(sample_identity(rng), size=112)
    frames = render_video(layers, [Event(onset=40, apex=52, offset=75, aus="6+12")],
                          n_frames=120, fps=200, blinks=[Blink(start=90, fps=200)], rng=rng)
    frames.shape                    # uint8 (120, 112, 112, 3)

Each frame, in the face's own coordinates: the neutral face (eyes blended towards shut during a
blink), darkened by the events' wrinkles, warped by the events' displacement fields weighted by
their intensity profiles; then moved by the head pose (slow drift and rotation), composited over
the static background (and under the glasses, which move with the head but not with the AUs),
lit with a flickering gain and given sensor noise.

The same function renders a long recording on a larger canvas (several events, blinks at known
times): pass ``canvas=Canvas(width, height, x, y)`` to place the face square inside it, and use
:func:`iter_video` to stream frames rather than hold them all.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from mer.data.aus import ActionUnit
from mer.data.synthetic.aus import as_units, displacement_field, wrinkle_map
from mer.data.synthetic.draw import FaceLayers, render_face
from mer.data.synthetic.face import Identity

REFERENCE_SIZE = 112  # amplitudes and head motion are given in pixels of a 112-px frame
WRINKLE_DEPTH_PER_PX = 0.025  # wrinkle darkening at full intensity per pixel of amplitude


@dataclass(frozen=True)
class Event:
    """One expression: AUs rising from ``onset`` to full ``intensity`` at ``apex``, gone at ``offset``.

    Frames are 0-based positions in the rendered video. ``aus`` may be given as a string
    (``"1+2+L12"``) or numbers and is stored as ActionUnits. ``weights`` (one per AU) scale the
    AUs within the event; the profile is a raised cosine up and another down (asymmetric when the
    apex is off-centre), strictly largest at the apex.
    """

    onset: int
    apex: int
    offset: int
    aus: tuple[ActionUnit, ...]
    intensity: float = 1.0
    weights: tuple[float, ...] | None = None
    emotion: str | None = None

    def __post_init__(self) -> None:
        if not self.onset < self.apex < self.offset:
            raise ValueError(f"an event needs onset < apex < offset, got {self.onset}, {self.apex}, {self.offset}")
        object.__setattr__(self, "aus", as_units(self.aus))
        if self.weights is not None and len(self.weights) != len(self.aus):
            raise ValueError(f"{len(self.weights)} weights for {len(self.aus)} AUs")

    def profile(self, n_frames: int) -> np.ndarray:
        """Intensity (n_frames,) in [0, intensity]: 0 outside (onset, offset), the maximum at apex."""
        t = np.arange(n_frames, dtype=np.float64)
        rise = 0.5 - 0.5 * np.cos(np.pi * (t - self.onset) / (self.apex - self.onset))
        fall = 0.5 + 0.5 * np.cos(np.pi * (t - self.apex) / (self.offset - self.apex))
        w = np.where(t <= self.apex, rise, fall)
        return np.where((t > self.onset) & (t < self.offset), w, 0.0) * self.intensity


@dataclass(frozen=True)
class Blink:
    """An eye blink starting at frame ``start``: the lids close fast and reopen more slowly.

    ``duration_ms`` (typically 100-200 ms) spans closing, a short closed phase and opening;
    ``depth`` 1 shuts the eyes fully.
    """

    start: float
    fps: float
    duration_ms: float = 150.0
    depth: float = 1.0

    def profile(self, n_frames: int) -> np.ndarray:
        """Closure (n_frames,) in [0, depth]."""
        t = (np.arange(n_frames) - self.start) * 1000.0 / self.fps / self.duration_ms  # 0..1 over the blink
        close, hold = 0.35, 0.5  # fractions of the duration: closing ends, opening starts
        c = np.zeros(n_frames)
        down = (t >= 0) & (t < close)
        c[down] = 0.5 - 0.5 * np.cos(np.pi * t[down] / close)
        c[(t >= close) & (t < hold)] = 1.0
        up = (t >= hold) & (t < 1)
        c[up] = 0.5 + 0.5 * np.cos(np.pi * (t[up] - hold) / (1 - hold))
        return c * self.depth


def sample_blinks(n_frames: int, fps: float, rate: float, rng: np.random.Generator) -> list[Blink]:
    """Blinks at random times: a Poisson number at ``rate`` per second, each 100-200 ms, mostly full."""
    seconds = n_frames / fps
    count = int(rng.poisson(rate * seconds)) if rate > 0 else 0
    blinks = []
    for _ in range(count):
        duration = float(rng.uniform(100, 200))
        start = float(rng.uniform(-0.5 * duration * fps / 1000, n_frames - 1))
        blinks.append(Blink(start=start, fps=fps, duration_ms=duration, depth=float(rng.uniform(0.7, 1.0))))
    return blinks


@dataclass(frozen=True)
class Nuisance:
    """Motion and sensor effects not tied to the expression (0 switches one off).

    ``head_motion``: drift of the head in pixels at 112 px (scaled with the frame);
    ``head_rotation``: in-plane rotation in degrees; ``flicker``: relative amplitude of the
    illumination's gain changes; ``noise``: sensor noise standard deviation in grey levels.
    """

    head_motion: float = 0.7
    head_rotation: float = 0.7
    flicker: float = 0.02
    noise: float = 2.0

    @classmethod
    def none(cls) -> Nuisance:
        return cls(0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Canvas:
    """A frame larger than the face: the ``size`` x ``size`` face square's top-left at (x, y)."""

    width: int
    height: int
    x: int
    y: int
    background: np.ndarray | None = None  # uint8 or float (height, width, 3); default: the subject's backdrop stretched


def _slow_curve(n_frames: int, fps: float, rng: np.random.Generator, low_hz: float = 0.1, high_hz: float = 1.2) -> np.ndarray:
    """A smooth random curve (n_frames,) of unit standard deviation: a few slow sinusoids."""
    t = np.arange(n_frames) / fps
    k = 4
    freqs = rng.uniform(low_hz, high_hz, k)
    phases = rng.uniform(0, 2 * np.pi, k)
    amps = rng.normal(0, 1, k) / freqs**0.5  # slower components larger, as in a drift
    curve = (amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None])).sum(0)
    return curve / (np.sqrt((amps**2).sum() / 2) + 1e-9)


def iter_video(
    face: Identity | FaceLayers,
    events: Sequence[Event],
    n_frames: int,
    fps: float,
    *,
    size: int = REFERENCE_SIZE,
    amplitude: float = 3.0,
    blinks: Sequence[Blink] = (),
    nuisance: Nuisance = Nuisance(),
    canvas: Canvas | None = None,
    rng: np.random.Generator,
) -> Iterator[np.ndarray]:
    """Frames one at a time, uint8 (H, W, 3) RGB; arguments as :func:`render_video`."""
    layers = face if isinstance(face, FaceLayers) else render_face(face, size)
    size = layers.size
    px_scale = size / REFERENCE_SIZE

    # The events at full intensity: a displacement field and a wrinkle map each, in face pixels.
    fields = [displacement_field(layers, e.aus, e.weights, amplitude=amplitude * px_scale) for e in events]
    wrinkles = [wrinkle_map(layers, e.aus, e.weights, depth=WRINKLE_DEPTH_PER_PX * amplitude) for e in events]
    profiles = np.array([e.profile(n_frames) for e in events]).reshape(len(events), n_frames)
    closure = np.zeros(n_frames)
    for blink in blinks:
        closure = np.maximum(closure, blink.profile(n_frames))

    # Nuisances drawn in a fixed order so a seed gives the same video.
    drift_x = _slow_curve(n_frames, fps, rng) * nuisance.head_motion * px_scale
    drift_y = _slow_curve(n_frames, fps, rng) * nuisance.head_motion * px_scale
    angle = np.deg2rad(_slow_curve(n_frames, fps, rng) * nuisance.head_rotation)
    wave = _slow_curve(n_frames, fps, rng, 0.5, 4.0)
    gain = 1 + nuisance.flicker * (0.7 * wave + 0.3 * rng.standard_normal(n_frames))

    head = layers.head
    glasses = layers.glasses
    left = 0  # columns added left of the face square (its x=0 is at column ``left`` of ``head``)
    if canvas is None:
        width = height = size
        shift = (0.0, 0.0)
        background = layers.background
    else:
        width, height, shift = canvas.width, canvas.height, (float(canvas.x), float(canvas.y))
        if canvas.background is not None:
            background = np.asarray(canvas.background, np.float32)
        else:
            background = cv2.resize(layers.background, (width, height), interpolation=cv2.INTER_LINEAR)
        # The torso continues past the face square: repeat its edge rows and columns (the
        # square's top corners are transparent, so only shoulders and chest extend).
        left, right, below = max(0, canvas.x) + 8, max(0, width - canvas.x - size) + 8, max(0, height - canvas.y - size) + 8
        pads = ((0, below), (left, right))
        head = np.pad(head, pads + ((0, 0),), mode="edge")
        glasses = None if glasses is None else np.pad(glasses, pads + ((0, 0),))
        wrinkles = [np.pad(w, pads) for w in wrinkles]
    # 4-channel images throughout: cv2 remaps 4 channels faster than 3, and numpy avoids broadcasts.
    background = np.dstack([background, np.zeros((height, width), np.float32)]).astype(np.float32)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    pivot = layers.origin  # the head turns about the face origin
    # Sensor noise: a bank of noise frames seen through random shifts (drawing fresh Gaussian
    # noise per frame would cost more than everything else).
    bank = rng.standard_normal((8, height + 16, width + 16, 3), dtype=np.float32) * np.float32(nuisance.noise)
    picks = rng.integers(0, [8, 16, 16], size=(n_frames, 3))
    moving = nuisance.head_motion > 0 or nuisance.head_rotation > 0 or canvas is not None

    for t in range(n_frames):
        image = head
        if closure[t] > 0.01:
            image = head.copy()
            for eye in layers.eyes:
                _close_eye(image, eye, closure[t], left)
        active = np.flatnonzero(profiles[:, t] > 0)
        if active.size:
            shade = 1 - sum(float(profiles[e, t]) * wrinkles[e] for e in active)
            image = image * cv2.merge([shade, shade, shade, np.ones_like(shade)])

        # Inverse head pose: where in the face square each output pixel looks.
        if moving:
            c, s = np.float32(np.cos(angle[t])), np.float32(np.sin(angle[t]))
            dx = xs - np.float32(pivot[0] + shift[0] + drift_x[t])
            dy = ys - np.float32(pivot[1] + shift[1] + drift_y[t])
            ux = c * dx + s * dy + np.float32(pivot[0])
            uy = c * dy - s * dx + np.float32(pivot[1])
        else:
            ux, uy = xs, ys
        if active.size:
            field = sum(float(profiles[e, t]) * fields[e] for e in active)  # (S, S, 2) in face pixels
            d = cv2.remap(field, ux, uy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0) if moving else field
            map_x, map_y = ux - d[..., 0], uy - d[..., 1]
        else:
            map_x, map_y = ux, uy
        if left:
            map_x = map_x + np.float32(left)
        out = _over(cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0), background)
        if glasses is not None:
            out = _over(
                cv2.remap(glasses, ux + np.float32(left), uy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0),
                out,
            )
        out = cv2.cvtColor(out, cv2.COLOR_RGBA2RGB) * np.float32(gain[t])
        if nuisance.noise > 0:
            k, oy, ox = picks[t]
            out += bank[k, oy : oy + height, ox : ox + width]
        yield np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _over(front: np.ndarray, back: np.ndarray) -> np.ndarray:
    """Premultiplied ``front`` (H, W, 4) over ``back`` (H, W, 4)."""
    inv = 1 - front[..., 3]
    return front + back * cv2.merge([inv, inv, inv, inv])


def _close_eye(image: np.ndarray, eye, closure: float, left: int = 0) -> None:
    """Move the upper lid down to ``closure`` of the opening, in place on (H, W, 4) ``image``
    (the face square starting at column ``left``)."""
    soft = 1.0 / max(eye.height_px, 1.0)  # a one-pixel anti-aliased lid edge
    covered = np.clip((closure - eye.closure) / soft + 0.5, 0, 1) * eye.inside
    edge = np.exp(-(((eye.closure - closure) / (1.5 * soft)) ** 2)) * eye.inside * min(1.0, closure * 5)
    cols = slice(eye.cols.start + left, eye.cols.stop + left)
    patch = image[eye.rows, cols]
    blended = patch * (1 - covered[..., None]) + eye.closed * covered[..., None]
    blended[..., :3] *= (1 - 0.6 * edge)[..., None]  # the lashes on the moving lid
    image[eye.rows, cols] = blended


def render_video(
    face: Identity | FaceLayers,
    events: Sequence[Event],
    n_frames: int,
    fps: float,
    *,
    size: int = REFERENCE_SIZE,
    amplitude: float = 3.0,
    blinks: Sequence[Blink] = (),
    nuisance: Nuisance = Nuisance(),
    canvas: Canvas | None = None,
    rng: np.random.Generator,
) -> np.ndarray:
    """Render ``n_frames`` of a face holding ``events`` and ``blinks`` -> uint8 (T, H, W, 3).

    Args:
        face: an :class:`Identity` (drawn at ``size``) or its already drawn :class:`FaceLayers`.
        events: expressions at known frames; they may overlap (their fields add).
        n_frames, fps: length and rate of the video (fps times blinks and nuisances).
        size: side of the face square in pixels (ignored for FaceLayers: theirs is used).
        amplitude: pixels at 112 px that an AU's largest mover moves at intensity 1 (scaled with size).
        blinks: lid closures at known frames (see :func:`sample_blinks`).
        nuisance: head drift and rotation, illumination flicker, sensor noise.
        canvas: a larger frame holding the face square and a background; default: the square.
        rng: the source of the nuisances' randomness.
    """
    frames = list(
        iter_video(
            face, events, n_frames, fps, size=size, amplitude=amplitude, blinks=blinks, nuisance=nuisance, canvas=canvas, rng=rng
        )
    )
    return np.stack(frames)
