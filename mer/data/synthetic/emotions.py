"""Emotions as AU combinations (FACS/EMFACS prototypes), partial like real micro-expressions,
and the imbalanced class counts of a data set.
"""

from __future__ import annotations

import numpy as np

from mer.data.aus import ActionUnit
from mer.data.synthetic.aus import SUPPORTED_AUS, as_units

# Each emotion: one or more prototypes; a clip draws one, then keeps a random part of it.
PROTOTYPES: dict[str, tuple[str, ...]] = {
    "happiness": ("6+12",),
    "sadness": ("1+4+15",),
    "anger": ("4+5+7+23",),
    "contempt": ("L12", "R12", "L14", "R14"),
    "fear": ("1+2+4+5+20",),
    "disgust": ("9+10", "4+7+9"),
    "surprise": ("1+2+5+26",),
}

# Largest class first: the order of the geometric imbalance profile.
CLASS_ORDER = ("disgust", "surprise", "happiness", "fear", "sadness", "anger", "contempt")


def class_counts(total: int, imbalance: float, order: tuple[str, ...] = CLASS_ORDER) -> dict[str, int]:
    """Clips per class, ``total`` in all, geometric from the largest to ``imbalance`` times fewer.

    Rounded by largest remainder, so the counts sum to ``total`` and their ratio is the
    configured one up to rounding (288 clips at imbalance 10: 99 disgust ... 10 contempt).
    """
    if imbalance < 1:
        raise ValueError(f"imbalance is largest : smallest class, >= 1; got {imbalance}")
    k = len(order)
    shares = np.array([imbalance ** (-i / (k - 1)) for i in range(k)])
    exact = total * shares / shares.sum()
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: total - counts.sum()]:
        counts[i] += 1
    return dict(zip(order, counts.tolist()))


def sample_aus(emotion: str, rng: np.random.Generator, *, keep: float = 0.7, extra: float = 0.15) -> tuple[ActionUnit, ...]:
    """The AUs a clip of ``emotion`` shows: a random non-empty part of a prototype (each AU kept
    with probability ``keep``), plus with probability ``extra`` one unrelated AU."""
    prototypes = PROTOTYPES[emotion]
    units = list(as_units(prototypes[int(rng.integers(len(prototypes)))]))
    kept = [u for u in units if rng.random() < keep]
    if not kept:
        kept = [units[int(rng.integers(len(units)))]]
    if rng.random() < extra:
        present = {u.number for u in kept}
        others = [n for n in SUPPORTED_AUS if n not in present]
        kept.append(ActionUnit(int(others[int(rng.integers(len(others)))])))
    return tuple(sorted(kept, key=lambda u: (u.number, u.side or "")))
