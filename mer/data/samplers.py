"""Clip samplers: which frames of a clip the model sees. They decode nothing.

    sampler = build_sampler("keyframe", num_frames=16, rise_share=0.5, context_frames=2, context="50ms")
    indices = sampler(record, train=True)   # sorted positions in [0, record.n_frames)

A micro-expression lasts a fraction of a second inside a longer clip, so where frames are taken
matters more than how many. Durations are given in frames (``4``) or time (``"20ms"``, ``"0.02s"``),
so a 200-fps and a 500-fps clip sample the same span of time.

Every sampler returns exactly ``num_frames`` indices in temporal order. A clip with fewer frames
than asked repeats frames (nearest in time); a record whose apex was missing uses the onset-offset
midpoint the reader put there (``record.apex_estimated``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

import numpy as np

from mer.data.records import ClipRecord
from mer.registry import Registry

SAMPLERS: Registry[Callable[..., ClipSampler]] = Registry("clip sampler")

_DURATION = re.compile(r"^\s*(?P<value>[-+]?\d*\.?\d+(?:e[-+]?\d+)?)\s*(?P<unit>ms|s|f|frames?)?\s*$", re.I)


def to_frames(value: int | float | str | None, fps: float) -> float:
    """A duration in frames: ints and bare numbers are frames, ``"20ms"``/``"0.02s"`` are converted at ``fps``."""
    if value is None:
        return 0.0
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    match = _DURATION.match(str(value))
    if match is None:
        raise ValueError(f"{value!r} is not a duration (use frames, e.g. 4, or time, e.g. '20ms', '0.02s')")
    number, unit = float(match["value"]), (match["unit"] or "f").lower()
    if unit == "ms":
        return number * fps / 1000.0
    if unit == "s":
        return number * fps
    return number


def _spread(first: float, last: float, n: int) -> np.ndarray:
    """n positions evenly from first to last inclusive (n=1 -> the middle)."""
    if n <= 0:
        return np.zeros(0)
    if n == 1:
        return np.array([(first + last) / 2.0])
    return np.linspace(first, last, n)


def _clip_round(positions: np.ndarray, lo: int, hi: int) -> list[int]:
    return np.clip(np.rint(positions), lo, hi).astype(int).tolist()


class ClipSampler:
    """Base: ``sampler(record, train, rng=None) -> list[int]`` of length ``num_frames``."""

    name = "base"

    def __init__(self, num_frames: int) -> None:
        if int(num_frames) < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        self.num_frames = int(num_frames)

    def __call__(self, record: ClipRecord, train: bool = False, rng: random.Random | None = None) -> list[int]:
        rng = rng or random  # DataLoader workers seed `random` per worker
        indices = self.sample(record, train, rng)
        assert len(indices) == self.num_frames
        return sorted(indices)

    def sample(self, record: ClipRecord, train: bool, rng) -> list[int]:
        raise NotImplementedError

    def draws_at_random(self, train: bool) -> bool:
        """Whether two calls may give other frames for the same clip (then a clip's flow is not
        worth caching: each draw would add an entry that is rarely read again)."""
        return False

    def draws_near_fixed_frames(self, train: bool) -> bool:
        """Whether random draws stay within a few frames of fixed positions, so that the pairs
        (first frame, frame t) of a clip recur from draw to draw and their flows are worth caching
        pair by pair; not so for segments spread over the clip."""
        return False

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({options})"


def _window(record: ClipRecord, span: str) -> tuple[int, int]:
    """Inclusive [first, last] of the clip ("clip") or of the event ("event")."""
    if span == "event":
        return record.onset, record.offset
    if span == "clip":
        start, stop = record.span
        return start, stop - 1
    raise ValueError(f"span must be 'clip' or 'event', got {span!r}")


@SAMPLERS.register("uniform")
class UniformSampler(ClipSampler):
    """Evenly spaced over the whole clip (``span="clip"``) or over onset..offset (``span="event"``)."""

    name = "uniform"

    def __init__(self, num_frames: int, span: str = "clip") -> None:
        super().__init__(num_frames)
        self.span = span

    def sample(self, record, train, rng):
        first, last = _window(record, self.span)
        return _clip_round(_spread(first, last, self.num_frames), 0, record.n_frames - 1)


@SAMPLERS.register("random")
class RandomSegmentSampler(ClipSampler):
    """TSN-style: the window cut into ``num_frames`` equal segments, a random frame of each (train)
    or each segment's centre (eval)."""

    name = "random"

    def __init__(self, num_frames: int, span: str = "clip") -> None:
        super().__init__(num_frames)
        self.span = span

    def sample(self, record, train, rng):
        first, last = _window(record, self.span)
        edges = np.linspace(first, last + 1, self.num_frames + 1)
        indices = []
        for a, b in zip(edges[:-1], edges[1:]):
            lo = min(int(np.ceil(a)), last)  # the frames i with a <= i < b
            hi = max(int(np.ceil(b)) - 1, lo)  # a segment shorter than a frame keeps one frame
            indices.append(rng.randint(lo, hi) if train else (lo + hi) // 2)
        return indices

    def draws_at_random(self, train: bool) -> bool:
        return train


@SAMPLERS.register("keyframe")
class KeyframeSampler(ClipSampler):
    """Anchored on onset, apex and offset; the apex is always sampled.

    Of the ``num_frames - context_frames`` event frames, ``rise_share`` go to the rise (onset up to,
    not including, the apex), one to the apex, the rest to the fall (after the apex up to offset).
    ``context_frames`` more are spread over ``context`` (a duration) before the onset, so the model
    sees the neutral face the motion starts from. In training each non-apex frame is moved by up to
    ``jitter`` times the gap to its neighbours (0 = none, 0.5 = up to half the gap); eval is
    deterministic.

        onset              apex              offset
          |----rise_share---|----1-share-------|
        x x|x   x   x   x   A   x    x    x    x|
        ^ context frames
    """

    name = "keyframe"

    def __init__(
        self,
        num_frames: int,
        rise_share: float = 0.5,
        context_frames: int = 0,
        context: int | float | str = "50ms",
        jitter: float = 0.5,
    ) -> None:
        super().__init__(num_frames)
        if not 0.0 <= rise_share <= 1.0:
            raise ValueError(f"rise_share must be in [0, 1], got {rise_share}")
        if not 0 <= int(context_frames) < num_frames:
            raise ValueError(f"context_frames must be in [0, num_frames), got {context_frames}")
        if not 0.0 <= jitter <= 1.0:
            raise ValueError(f"jitter must be in [0, 1], got {jitter}")
        self.rise_share, self.context_frames, self.context, self.jitter = rise_share, int(context_frames), context, jitter

    def sample(self, record, train, rng):
        onset, apex, offset, last = record.onset, record.apex, record.offset, record.n_frames - 1
        event = self.num_frames - self.context_frames
        n_rise = int(round(self.rise_share * (event - 1)))
        n_fall = event - 1 - n_rise
        # rise: n_rise positions on [onset, apex) ; fall: n_fall on (apex, offset]
        rise = np.linspace(onset, apex, n_rise + 1)[:-1] if n_rise else np.zeros(0)
        fall = np.linspace(apex, offset, n_fall + 1)[1:] if n_fall else np.zeros(0)
        if train and self.jitter > 0:
            rise = self._jitter(rise, (apex - onset) / max(n_rise, 1), onset, apex, rng)
            fall = self._jitter(fall, (offset - apex) / max(n_fall, 1), apex, offset, rng)
        parts = [rise, np.array([apex], dtype=float), fall]
        if self.context_frames:
            reach = max(to_frames(self.context, record.fps), 1.0)
            before = np.linspace(onset - reach, onset, self.context_frames + 1)[:-1]
            parts.insert(0, before)
        positions = np.concatenate(parts)
        indices = _clip_round(positions, 0, last)
        indices[self.context_frames + n_rise] = apex  # rounding never moves the apex
        return indices

    def draws_at_random(self, train: bool) -> bool:
        return train and self.jitter > 0

    def draws_near_fixed_frames(self, train: bool) -> bool:
        return self.draws_at_random(train)  # each frame moves by up to a share of the gap to its neighbours

    def _jitter(self, positions: np.ndarray, gap: float, lo: float, hi: float, rng) -> np.ndarray:
        if positions.size == 0:
            return positions
        shift = np.array([rng.uniform(-1.0, 1.0) for _ in range(positions.size)]) * self.jitter * gap
        return np.clip(positions + shift, lo, hi)


@SAMPLERS.register("apex_window")
class ApexWindowSampler(ClipSampler):
    """``num_frames`` centred on the apex (which is sampled), ``stride`` apart (a duration: frames or time).

    In training the window's centre moves by up to ``jitter`` (a duration) either way.
    """

    name = "apex_window"

    def __init__(self, num_frames: int, stride: int | float | str = 1, jitter: int | float | str = 0) -> None:
        super().__init__(num_frames)
        self.stride, self.jitter = stride, jitter

    def sample(self, record, train, rng):
        stride = max(to_frames(self.stride, record.fps), 1e-6)
        centre = float(record.apex)
        if train:
            reach = to_frames(self.jitter, record.fps)
            centre += rng.uniform(-reach, reach) if reach > 0 else 0.0
        offsets = (np.arange(self.num_frames) - self.num_frames // 2) * stride  # the apex itself is sampled
        return _clip_round(centre + offsets, 0, record.n_frames - 1)

    def draws_at_random(self, train: bool) -> bool:
        return train and to_frames(self.jitter, 1000.0) > 0

    def draws_near_fixed_frames(self, train: bool) -> bool:
        return self.draws_at_random(train)  # the window moves by up to ``jitter``, a few frames


def list_samplers() -> list[str]:
    return SAMPLERS.names()


def build_sampler(name: str, num_frames: int = 16, **options) -> ClipSampler:
    """A sampler by registry name; options that are ``None`` keep the sampler's defaults."""
    return SAMPLERS.build(name, num_frames=num_frames, **options)
