"""Synthetic people: a parametric face, its landmarks and appearance, one per subject.

Face units: x to the right of the image, y down, origin near the bridge of the nose, 1 = half the
face's width. ``_L`` landmarks are on the subject's left, which a frontal camera shows on the
image's right (+x); ``_R`` on the subject's right (-x). ``draw.py`` turns an :class:`Identity`
into image layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIDES = ("L", "R")
SIGN = {"L": 1.0, "R": -1.0}  # x direction of each side: the subject's left is the image's right

# (R, G, B) 0..255, light to dark; a subject's tone is one of these, jittered.
SKIN_TONES = ((241, 204, 181), (232, 190, 160), (224, 172, 135), (198, 145, 105), (168, 117, 80), (125, 84, 58), (96, 64, 45))
HAIR_COLOURS = ((25, 20, 18), (55, 38, 28), (95, 65, 40), (150, 110, 65), (200, 165, 110), (130, 60, 35), (150, 150, 150))
IRIS_COLOURS = ((60, 40, 25), (95, 65, 40), (70, 100, 130), (80, 110, 70), (40, 30, 25))
HAIR_STYLES = ("short", "long", "receding", "curly")


@dataclass(eq=False)
class Identity:
    """One synthetic person: geometry in face units and appearance; drawn by :func:`render_face`."""

    landmarks: dict[str, np.ndarray]  # name -> (2,) in face units
    contour: np.ndarray  # (K, 2) closed face outline in face units
    scale: float  # face half-width as a fraction of the frame size
    center: tuple[float, float]  # face origin as fractions of the frame size (x, y)
    skin: tuple[float, float, float]
    lips: tuple[float, float, float]
    hair: tuple[float, float, float]
    iris: tuple[float, float, float]
    shirt: tuple[float, float, float]
    backdrop: tuple[tuple[float, float, float], tuple[float, float, float]]  # two colours of a gradient
    hair_style: str
    hairline: float  # y of the hairline at the midline, face units
    brow_thickness: float  # face units
    light: tuple[float, float, float]  # unit vector towards the light
    texture: float  # skin texture contrast (1 = typical)
    stubble: float  # 0 = none
    glasses: str | None  # None, "round" or "square"
    glasses_colour: tuple[float, float, float] = (30, 30, 30)
    seed: int = 0  # texture noise


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _jitter(colour, rng: np.random.Generator, amount: float) -> tuple[float, float, float]:
    c = np.asarray(colour, float) * rng.uniform(1 - amount, 1 + amount) + rng.normal(0, amount * 40, 3)
    return tuple(float(v) for v in np.clip(c, 0, 255))


def sample_identity(rng: np.random.Generator) -> Identity:
    """A random person: face shape, feature positions and sizes, skin, hair, glasses or not."""
    fw, fh = _u(rng, 0.9, 1.1), _u(rng, 0.92, 1.08)  # face width, height
    jaw, chin_w, chin_y = _u(rng, 0.7, 0.92), _u(rng, 0.26, 0.46), _u(rng, 1.18, 1.34) * fh
    eye_x, eye_y = _u(rng, 0.36, 0.45), _u(rng, -0.34, -0.22)
    eye_w, eye_up, eye_lo, tilt = _u(rng, 0.17, 0.22), _u(rng, 0.06, 0.1), _u(rng, 0.04, 0.06), _u(rng, -0.02, 0.035)
    brow_gap, arch, brow_len = _u(rng, 0.17, 0.27), _u(rng, 0.02, 0.09), _u(rng, 0.85, 1.1)
    nose_y, nose_w = _u(rng, 0.2, 0.32), _u(rng, 0.13, 0.2)
    mouth_y, mouth_w = nose_y + _u(rng, 0.3, 0.4), _u(rng, 0.32, 0.43)
    lip_up, lip_lo, curve = _u(rng, 0.055, 0.09), _u(rng, 0.07, 0.12), _u(rng, -0.02, 0.025)

    half = {  # subject's left side (+x); mirrored for the right
        "brow_inner": (eye_x - eye_w - 0.05, eye_y - brow_gap + 0.03),
        "brow_mid": (eye_x + 0.02, eye_y - brow_gap - arch),
        "brow_outer": (eye_x + eye_w + 0.14 * brow_len, eye_y - brow_gap + 0.02 - arch / 3),
        "eye_inner": (eye_x - eye_w, eye_y + tilt),
        "eye_outer": (eye_x + eye_w, eye_y - tilt),
        "eye_center": (eye_x, eye_y),
        "lid_upper": (eye_x - 0.01, eye_y - eye_up),
        "lid_lower": (eye_x + 0.01, eye_y + eye_lo),
        "lid_crease": (eye_x - 0.005, eye_y - eye_up - _u(rng, 0.03, 0.06)),
        "cheek": (eye_x + 0.1, eye_y + 0.4),
        "temple": (0.85 * fw, eye_y - 0.25),
        "nose_side": (0.09, (eye_y + nose_y) / 2),
        "ala": (nose_w, nose_y + 0.02),
        "nostril": (nose_w * 0.5, nose_y + 0.065),
        "nasolabial": (nose_w + 0.06, nose_y + 0.0),
        "nasolabial_end": (mouth_w + 0.07, mouth_y + 0.07),
        "mouth_corner": (mouth_w, mouth_y - curve),
        "lip_upper_peak": (0.07, mouth_y - lip_up - 0.015),
        "lip_upper_mid": (mouth_w * 0.55, mouth_y - lip_up * 0.75),
        "lip_lower_mid": (mouth_w * 0.55, mouth_y + lip_lo * 0.85),
        "jaw": (jaw * fw, 0.78 * fh),
        "ear": (0.99 * fw, _u(rng, -0.2, -0.05)),
    }
    landmarks: dict[str, np.ndarray] = {}
    for name, (x, y) in half.items():
        for side in SIDES:
            wobble = rng.normal(0, 0.007, 2)  # faces are not quite symmetric
            landmarks[f"{name}_{side}"] = np.array([SIGN[side] * x + wobble[0], y + wobble[1]])
    landmarks.update(
        nose_root=np.array([0.0, eye_y]),
        nose_tip=np.array([0.0, nose_y + 0.04]),
        lip_upper_top=np.array([0.0, mouth_y - lip_up]),
        seam=np.array([0.0, mouth_y + 0.004]),
        lip_lower_bottom=np.array([0.0, mouth_y + lip_lo]),
        chin=np.array([0.0, (mouth_y + lip_lo + chin_y) / 2 + 0.05]),
        chin_bottom=np.array([0.0, chin_y]),
        forehead=np.array([0.0, eye_y - brow_gap - 0.35]),
    )
    top = -_u(rng, 1.25, 1.38) * fh
    outline_half = [
        (0.55 * fw, top + 0.1),
        (0.9 * fw, -0.75 * fh),
        (fw, -0.15),
        (0.97 * fw, 0.3),
        (jaw * fw, 0.78 * fh),
        (chin_w, chin_y - 0.1),
    ]
    outline = [(0.0, top)] + outline_half + [(0.0, chin_y)] + [(-x, y) for x, y in reversed(outline_half)]
    contour = spline(np.array(outline), closed=True)

    tone = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
    skin = _jitter(tone, rng, 0.05)
    lips = tuple(float(v) for v in np.clip(np.array(skin) * np.array([0.92, 0.62, 0.62]) + np.array([10, 0, 0]), 0, 255))
    hair = _jitter(HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))], rng, 0.1)
    style = HAIR_STYLES[int(rng.integers(len(HAIR_STYLES)))]
    azimuth, elevation = _u(rng, -0.7, 0.7), _u(rng, -0.5, -0.1)
    light = np.array([np.sin(azimuth), elevation, np.cos(azimuth)])
    backdrop_hue = rng.uniform(40, 220, 3)
    return Identity(
        landmarks=landmarks,
        contour=contour,
        scale=_u(rng, 0.29, 0.32),
        center=(0.5 + _u(rng, -0.015, 0.015), 0.52 + _u(rng, -0.015, 0.015)),
        skin=skin,
        lips=lips,
        hair=hair,
        iris=_jitter(IRIS_COLOURS[int(rng.integers(len(IRIS_COLOURS)))], rng, 0.1),
        shirt=tuple(float(v) for v in rng.uniform(20, 230, 3)),
        backdrop=(
            tuple(float(v) for v in backdrop_hue),
            tuple(float(v) for v in np.clip(backdrop_hue * rng.uniform(0.6, 1.2, 3), 0, 255)),
        ),
        hair_style=style,
        hairline=-_u(rng, 1.02, 1.15) * fh if style == "receding" else -_u(rng, 0.8, 0.98) * fh,
        brow_thickness=_u(rng, 0.04, 0.085),
        light=tuple(float(v) for v in light / np.linalg.norm(light)),
        texture=_u(rng, 0.6, 1.5),
        stubble=_u(rng, 0.3, 0.8) if rng.random() < 0.15 else 0.0,
        glasses=("round", "square")[int(rng.integers(2))] if rng.random() < 0.3 else None,
        glasses_colour=tuple(float(v) for v in rng.uniform(10, 120, 3)),
        seed=int(rng.integers(2**31)),
    )


def spline(points: np.ndarray, *, closed: bool = False, per_segment: int = 12) -> np.ndarray:
    """Catmull-Rom curve through ``points`` (K, 2) -> (M, 2)."""
    p = np.asarray(points, float)
    if closed:
        ext = np.vstack([p[-1], p, p[0], p[1]])
    else:
        ext = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    t = np.linspace(0, 1, per_segment, endpoint=False)[:, None]
    out = []
    for i in range(len(ext) - 3):
        p0, p1, p2, p3 = ext[i], ext[i + 1], ext[i + 2], ext[i + 3]
        out.append(0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3))
    if not closed:
        out.append(p[-1:])
    return np.vstack(out)
