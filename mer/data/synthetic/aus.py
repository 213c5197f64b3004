"""Action units as smooth displacement fields (and faint wrinkles) around facial landmarks.

Each AU is a few *movers*: a Gaussian bump of displacement centred near a landmark, moving the
features and the skin around it the way FACS describes the AU. Their sum over a frame is a dense
field ``d`` (S, S, 2) in pixels; the renderer shows the face at ``x`` what the neutral face had at
``x - d(x)``, so content moves by ``d``. Wrinkles (crow's feet for AU6, glabella furrows for AU4,
forehead lines for AU1/AU2, ...) are a darkening map (S, S) drawn on the skin before the warp.

Movers are written for the subject's left side (+x in the image) and mirrored for the right.
A unilateral AU (``L12``, ``R14``) keeps the movers of its side only, and half of its midline ones.

Vectors are relative: the largest mover of an AU has length ``gain``; the renderer scales them by
the amplitude in pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from mer.data.aus import ActionUnit, parse_aus
from mer.data.synthetic.draw import FaceLayers
from mer.data.synthetic.face import SIDES, SIGN


@dataclass(frozen=True)
class Mover:
    anchor: str  # landmark name without side suffix; midline landmarks have none
    vector: tuple[float, float]  # direction and relative size, left side (+x = outwards)
    sigma: float  # reach, face units
    offset: tuple[float, float] = (0.0, 0.0)  # from the anchor, face units (left side)
    midline: bool = False


@dataclass(frozen=True)
class Wrinkle:
    anchor: str
    points: tuple[tuple[float, float], ...]  # polyline relative to the anchor, face units (left side)
    width: float = 0.012
    depth: float = 1.0  # relative darkening
    midline: bool = False


@dataclass(frozen=True)
class AUModel:
    number: int
    name: str
    movers: tuple[Mover, ...]
    wrinkles: tuple[Wrinkle, ...] = ()
    gain: float = 1.0


def _forehead_lines(dx: float, width: float) -> tuple[Wrinkle, ...]:
    return tuple(
        Wrinkle("brow_mid", ((dx - width, -0.15 - k * 0.07), (dx, -0.17 - k * 0.07), (dx + width, -0.15 - k * 0.07)), 0.012, 0.8)
        for k in range(3)
    )


AU_MODELS: dict[int, AUModel] = {
    m.number: m
    for m in (
        AUModel(
            1,
            "inner brow raiser",
            (
                Mover("brow_inner", (0.0, -1.0), 0.11),
                Mover("brow_mid", (0.0, -0.45), 0.11),
                Mover("brow_inner", (0.0, -0.4), 0.15, (0.0, -0.15)),
            ),
            _forehead_lines(-0.18, 0.14),
        ),
        AUModel(
            2,
            "outer brow raiser",
            (
                Mover("brow_outer", (0.0, -1.0), 0.11),
                Mover("brow_mid", (0.0, -0.5), 0.11),
                Mover("brow_outer", (0.0, -0.4), 0.15, (0.0, -0.15)),
            ),
            _forehead_lines(0.12, 0.14),
        ),
        AUModel(
            4,
            "brow lowerer",
            (Mover("brow_inner", (-0.7, 0.8), 0.1), Mover("brow_mid", (-0.35, 0.6), 0.11), Mover("lid_upper", (0.0, 0.25), 0.07)),
            (
                Wrinkle("brow_inner", ((-0.07, -0.06), (-0.08, 0.04)), 0.014),
                Wrinkle("brow_inner", ((-0.02, -0.08), (-0.04, 0.02)), 0.01, 0.6),
            ),
        ),
        AUModel(5, "upper lid raiser", (Mover("lid_upper", (0.0, -1.0), 0.06), Mover("lid_crease", (0.0, -0.4), 0.06)), gain=0.7),
        AUModel(
            6,
            "cheek raiser",
            (
                Mover("cheek", (0.0, -1.0), 0.17),
                Mover("lid_lower", (0.0, -0.6), 0.06),
                Mover("eye_outer", (0.1, -0.35), 0.08, (0.06, 0.03)),
            ),
            tuple(Wrinkle("eye_outer", ((0.05, a), (0.13, a * 2.2)), 0.01, 0.9) for a in (-0.03, 0.01, 0.05)),
        ),
        AUModel(
            7,
            "lid tightener",
            (Mover("lid_lower", (0.0, -1.0), 0.06), Mover("lid_upper", (0.0, 0.4), 0.05), Mover("eye_outer", (-0.3, 0.0), 0.05)),
            gain=0.8,
        ),
        AUModel(
            9,
            "nose wrinkler",
            (
                Mover("nose_side", (0.0, -0.7), 0.09),
                Mover("ala", (0.0, -1.0), 0.08),
                Mover("lip_upper_mid", (0.0, -0.45), 0.1),
                Mover("brow_inner", (0.0, 0.35), 0.09),
            ),
            tuple(
                Wrinkle("nose_root", ((-0.07, y), (0.0, y - 0.015), (0.07, y)), 0.01, 1.0, midline=True)
                for y in (0.06, 0.11, 0.16)
            ),
        ),
        AUModel(
            10,
            "upper lip raiser",
            (
                Mover("lip_upper_mid", (0.0, -1.0), 0.09),
                Mover("lip_upper_top", (0.0, -0.6), 0.08, midline=True),
                Mover("ala", (0.0, -0.3), 0.08),
            ),
            (Wrinkle("nasolabial", ((0.0, 0.0), (0.05, 0.12), (0.08, 0.22)), 0.016, 0.8),),
        ),
        AUModel(
            12,
            "lip corner puller",
            (
                Mover("mouth_corner", (0.75, -0.7), 0.11),
                Mover("cheek", (0.0, -0.3), 0.17),
                Mover("lip_lower_mid", (0.3, -0.2), 0.08),
            ),
            (Wrinkle("nasolabial", ((0.02, 0.05), (0.07, 0.16), (0.1, 0.27)), 0.018, 0.9),),
        ),
        AUModel(
            14,
            "dimpler",
            (Mover("mouth_corner", (-0.7, -0.25), 0.14), Mover("mouth_corner", (-0.3, 0.0), 0.175, (0.07, 0.0))),
            (Wrinkle("mouth_corner", ((0.06, -0.03), (0.075, 0.02)), 0.018, 1.2),),
            gain=1.6,
        ),
        AUModel(
            15,
            "lip corner depressor",
            (Mover("mouth_corner", (0.1, 1.0), 0.09), Mover("lip_lower_mid", (0.0, 0.4), 0.08)),
            (Wrinkle("mouth_corner", ((0.02, 0.05), (0.05, 0.12)), 0.014, 0.7),),
        ),
        AUModel(
            17,
            "chin raiser",
            (Mover("chin", (0.0, -1.0), 0.15, midline=True), Mover("lip_lower_bottom", (0.0, -0.6), 0.09, midline=True)),
            (Wrinkle("chin", ((-0.1, 0.0), (0.0, 0.03), (0.1, 0.0)), 0.02, 0.7, midline=True),),
        ),
        AUModel(20, "lip stretcher", (Mover("mouth_corner", (1.0, 0.15), 0.1), Mover("lip_lower_mid", (0.4, 0.1), 0.08))),
        AUModel(
            23,
            "lip tightener",
            (
                Mover("lip_upper_top", (0.0, 0.7), 0.105, midline=True),
                Mover("lip_lower_bottom", (0.0, -0.8), 0.105, midline=True),
                Mover("mouth_corner", (-0.35, 0.0), 0.1225),
            ),
            (Wrinkle("seam", ((-0.12, 0.0), (0.12, 0.0)), 0.016, 0.8, midline=True),),
            gain=1.6,
        ),
        AUModel(
            25,
            "lips part",
            (
                Mover("seam", (0.0, -0.5), 0.045, (0.0, -0.04), midline=True),
                Mover("seam", (0.0, 1.0), 0.045, (0.0, 0.05), midline=True),
            ),
            (Wrinkle("seam", ((-0.1, 0.0), (0.1, 0.0)), 0.02, 1.2, midline=True),),
            gain=0.8,
        ),
        AUModel(
            26,
            "jaw drop",
            (
                Mover("chin", (0.0, 1.0), 0.22, midline=True),
                Mover("lip_lower_bottom", (0.0, 0.7), 0.09, midline=True),
                Mover("jaw", (0.0, 0.4), 0.16),
            ),
            (Wrinkle("seam", ((-0.08, 0.0), (0.08, 0.0)), 0.018, 0.8, midline=True),),
            gain=1.1,
        ),
    )
}

SUPPORTED_AUS = tuple(sorted(AU_MODELS))


def as_units(aus: Sequence[ActionUnit | int | str] | str) -> tuple[ActionUnit, ...]:
    """``"1+2+L12"``, ``[1, 2, "L12"]`` or ActionUnits -> ActionUnits; unknown AUs are an error."""
    if isinstance(aus, str):
        units = parse_aus(aus)
    else:
        units = tuple(a if isinstance(a, ActionUnit) else parse_aus(str(a))[0] for a in aus)
    for u in units:
        if u.number not in AU_MODELS:
            raise ValueError(f"AU{u.number} is not modelled (modelled: {', '.join(map(str, SUPPORTED_AUS))})")
    return units


def _sides(unit: ActionUnit) -> tuple[tuple[str, ...], float]:
    """Sides an AU acts on and the weight of its midline movers (half for a unilateral AU)."""
    return ((unit.side,), 0.5) if unit.side in SIDES else (SIDES, 1.0)


def _placed(layers: FaceLayers, anchor: str, offset, side: str | None) -> np.ndarray:
    name = anchor if side is None else f"{anchor}_{side}"
    sign = 1.0 if side is None else SIGN[side]
    return layers.landmarks[name] + np.array([sign * offset[0], offset[1]]) * layers.unit


def displacement_field(layers: FaceLayers, aus, weights: Sequence[float] | None = None, *, amplitude: float = 1.0) -> np.ndarray:
    """Displacement (S, S, 2) in pixels of the AUs at full intensity, times ``weights`` and ``amplitude``.

    ``amplitude`` is the length in pixels of an AU's largest mover (before its ``gain``).
    """
    units = as_units(aus)
    weights = [1.0] * len(units) if weights is None else list(weights)
    size = layers.size
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)  # pixel centres at integers, as cv2
    field = np.zeros((size, size, 2), np.float32)
    for unit, weight in zip(units, weights):
        model = AU_MODELS[unit.number]
        norm = max(np.hypot(*m.vector) for m in model.movers)
        sides, midline_weight = _sides(unit)
        for mover in model.movers:
            for side in (None,) if mover.midline else sides:
                centre = _placed(layers, mover.anchor, mover.offset, side)
                sign = 1.0 if side is None else SIGN[side]
                v = np.array([sign * mover.vector[0], mover.vector[1]]) / norm * model.gain * amplitude * weight
                if side is None:
                    v = v * midline_weight
                sigma = mover.sigma * layers.unit
                g = np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * sigma**2))
                field[..., 0] += v[0] * g
                field[..., 1] += v[1] * g
    return field


def wrinkle_map(layers: FaceLayers, aus, weights: Sequence[float] | None = None, *, depth: float = 0.05) -> np.ndarray:
    """Darkening (S, S) in [0, 1) of the AUs' wrinkles at full intensity: the skin is multiplied by 1 - map."""
    units = as_units(aus)
    weights = [1.0] * len(units) if weights is None else list(weights)
    size, ss = layers.size, 4  # drawn 4x supersampled, like the face
    canvas = np.zeros((size * ss, size * ss), np.float32)
    for unit, weight in zip(units, weights):
        sides, midline_weight = _sides(unit)
        for wrinkle in AU_MODELS[unit.number].wrinkles:
            for side in (None,) if wrinkle.midline else sides:
                sign = 1.0 if side is None else SIGN[side]
                base = _placed(layers, wrinkle.anchor, (0.0, 0.0), side)
                pts = np.array([base + np.array([sign * x, y]) * layers.unit for x, y in wrinkle.points])
                mask = np.zeros_like(canvas, np.uint8)
                thickness = max(1, int(round(wrinkle.width * layers.unit * ss)))
                cv2.polylines(
                    mask, [np.round((pts * ss + (ss - 1) / 2) * 16).astype(np.int32)], False, 255, thickness, cv2.LINE_AA, shift=4
                )
                strength = wrinkle.depth * weight * (midline_weight if side is None else 1.0)
                canvas = np.maximum(canvas, mask.astype(np.float32) / 255.0 * strength)
    small = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 0.5)
    return np.clip(small * depth, 0, 0.9).astype(np.float32)
