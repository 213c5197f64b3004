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


def au_set(units) -> tuple[ActionUnit, ...]:
    """A clip's AUs in their one order (by number, then side): what sample_aus returns."""
    return tuple(sorted(units, key=lambda u: (u.number, u.side or "")))


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
    return au_set(kept)


def au_set_distribution(emotion: str, *, keep: float = 0.7, extra: float = 0.15) -> dict[tuple[ActionUnit, ...], float]:
    """The exact distribution of what :func:`sample_aus` returns for ``emotion``: AU set -> probability."""
    out: dict[tuple[ActionUnit, ...], float] = {}

    def add(units: list[ActionUnit], p: float) -> None:
        present = {u.number for u in units}
        others = [n for n in SUPPORTED_AUS if n not in present]
        outcomes = [(units, p * (1 - extra))] + [(units + [ActionUnit(int(n))], p * extra / len(others)) for n in others]
        for aus, q in outcomes:
            key = au_set(aus)
            out[key] = out.get(key, 0.0) + q

    prototypes = PROTOTYPES[emotion]
    for prototype in prototypes:
        units = list(as_units(prototype))
        n = len(units)
        for mask in range(1, 2**n):
            kept = [u for i, u in enumerate(units) if mask >> i & 1]
            add(kept, keep ** len(kept) * (1 - keep) ** (n - len(kept)) / len(prototypes))
        for u in units:  # nothing kept: one of the prototype's AUs, drawn uniformly
            add([u], (1 - keep) ** n / n / len(prototypes))
    return out


def observer_ceiling(*, keep: float = 0.7, extra: float = 0.15, imbalance: float = 10.0, total: int = 288) -> dict[str, float]:
    """What an observer that sees each clip's AUs (with their side) perfectly reaches on the set:
    it picks the most probable emotion for the AUs, given the generator's prototypes and class
    counts. Exact expected figures (no sampling): UF1, UAR and accuracy of the expected confusion
    matrix. No model that only sees the AUs can do better on average; the rest of the way to 1 is
    AU sets that two emotions share (a kept AU4 alone is sadness, anger, fear or disgust).
    """
    counts = class_counts(total, imbalance)
    classes = list(counts)
    dists = {e: au_set_distribution(e, keep=keep, extra=extra) for e in classes}
    confusion = np.zeros((len(classes), len(classes)))
    for aus in set().union(*dists.values()):
        joint = np.array([counts[e] * dists[e].get(aus, 0.0) for e in classes])
        best = np.flatnonzero(np.isclose(joint, joint.max()))  # ties share the clips
        confusion[:, best] += joint[:, None] / len(best)
    tp = np.diag(confusion)
    predicted, actual = confusion.sum(0), confusion.sum(1)
    f1 = np.divide(2 * tp, predicted + actual, out=np.zeros_like(tp), where=predicted + actual > 0)
    return {"uf1": float(f1.mean()), "uar": float((tp / actual).mean()), "accuracy": float(tp.sum() / actual.sum())}
