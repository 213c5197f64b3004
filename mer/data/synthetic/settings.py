"""The generator's settings: one dataclass, checked and typed, and the hash that names a cached set."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields

import numpy as np

from mer.data.synthetic.render import Nuisance

# Bump when a change to the generator changes its output: cached data sets are keyed by it.
# 3: AU14 and AU23 as visible as AU5/AU12; 2: H.264 with mbtree=0, bit-reproducible (1: every generation differed)
GENERATOR_VERSION = 3


@dataclass
class SyntheticSettings:
    """Everything that decides the data (``workers`` only decides how fast it is made)."""

    # Data set size.
    n_subjects: int = 24
    clips_per_subject: int = 12
    seed: int = 0
    # Video.
    fps: float = 200.0
    size: int = 112  # frame side in pixels
    clip_seconds: float = 0.6  # clip length; longer when the event would cover >= 45% of it
    crf: int = 20  # H.264 quality (lower = better); unused with as_frames
    as_frames: bool = False  # JPEG frame folders img1.jpg ... instead of mp4
    # The expression.
    amplitude: float = 3.0  # pixels at 112 px an AU's main movement reaches at full intensity
    au_keep: float = 0.7  # probability of keeping each AU of the emotion's prototype
    extra_au: float = 0.15  # probability of one extra AU unrelated to the emotion
    imbalance: float = 10.0  # largest : smallest class
    min_ms: float = 40.0  # event duration onset..offset, skewed towards short
    max_ms: float = 500.0
    label_noise: float = 0.0  # probability that a clip's emotion label is another class
    # Nuisances.
    head_motion: float = 0.7  # head drift, pixels at 112 px
    head_rotation: float = 0.7  # in-plane head rotation, degrees
    blink_rate: float = 0.5  # blinks per second
    flicker: float = 0.02  # illumination gain changes, relative
    noise: float = 2.0  # sensor noise, grey levels (std)
    # Execution.
    workers: int | None = None  # processes; default os.cpu_count()

    def check(self) -> SyntheticSettings:
        if self.n_subjects < 1 or self.clips_per_subject < 1:
            raise ValueError("n_subjects and clips_per_subject must be >= 1")
        if self.size < 32 or self.fps <= 0 or self.clip_seconds <= 0:
            raise ValueError("size must be >= 32 and fps, clip_seconds > 0")
        if not 0 < self.min_ms <= self.max_ms:
            raise ValueError(f"need 0 < min_ms <= max_ms, got {self.min_ms}, {self.max_ms}")
        for name in ("au_keep", "extra_au", "label_noise"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} is a probability, got {getattr(self, name)}")
        if self.imbalance < 1:
            raise ValueError(f"imbalance is largest : smallest class, >= 1; got {self.imbalance}")
        return self

    def data_settings(self) -> dict:
        """The settings that decide the output (all but ``workers``), JSON-ready."""
        out = asdict(self)
        out.pop("workers")
        return out

    @property
    def nuisance(self) -> Nuisance:
        return Nuisance(head_motion=self.head_motion, head_rotation=self.head_rotation, flicker=self.flicker, noise=self.noise)


def make_settings(**settings) -> SyntheticSettings:
    """:class:`SyntheticSettings` from keyword options; an unknown key is a one-line error listing the valid ones."""
    valid = [f.name for f in fields(SyntheticSettings)]
    unknown = [k for k in settings if k not in valid]
    if unknown:
        raise ValueError(f"unknown synthetic data option {unknown[0]!r}; valid: {', '.join(valid)}")
    typed = {}
    for f in fields(SyntheticSettings):
        if f.name in settings:
            typed[f.name] = _coerce(f.name, f.type, settings[f.name])
    return SyntheticSettings(**typed).check()


def _coerce(name: str, kind: str, value):
    """``3`` -> ``3.0`` for float options, ``4.0`` -> ``4`` for int ones: one spelling, one cache key."""
    if value is None and kind.replace(" ", "").endswith("|None"):  # an optional setting left unset
        return None
    try:
        if kind == "bool":
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError
            return bool(value)
        if kind == "float":
            return float(value)
        number = float(value)
        if not number.is_integer():
            raise ValueError
        return int(number)
    except (TypeError, ValueError):
        raise ValueError(f"synthetic data option {name}={value!r}: expected {kind}") from None


def settings_key(settings: SyntheticSettings) -> str:
    """A short hash of the data settings and the generator version: the cache folder's name."""
    text = json.dumps({"version": GENERATOR_VERSION, **settings.data_settings()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
