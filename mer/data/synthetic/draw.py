"""Drawing a face: an :class:`Identity` to the image layers the renderer warps frame by frame.

Drawn once per subject, 4x supersampled with anti-aliased polygons (cv2, LINE_AA) and shaded
(a lit ellipsoid, soft shadows, skin texture), then downscaled:

    Identity ──render_face(size)──► FaceLayers
                                      head        float32 (S, S, 4) premultiplied RGBA, 0..255
                                      eyes        per eye: opening mask, lid-closure map, closed patch
                                      glasses     float32 (S, S, 4) or None (moves with the head only)
                                      background  float32 (S, S, 3) (static)
                                      landmarks   name -> (2,) pixel position (cv2: pixel centres at integers)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from mer.data.synthetic.face import SIDES, SIGN, Identity, spline

SUPERSAMPLE = 4


class _Painter:
    """Anti-aliased masks at the supersampled resolution, positioned in face units."""

    def __init__(self, n: int, origin: tuple[float, float], unit: float) -> None:
        self.n, self.origin, self.unit = n, origin, unit

    def px(self, pts) -> np.ndarray:
        pts = np.asarray(pts, float).reshape(-1, 2)
        return np.stack([self.origin[0] + pts[:, 0] * self.unit, self.origin[1] + pts[:, 1] * self.unit], axis=1)

    def _fixed(self, pts) -> np.ndarray:
        return np.round(self.px(pts) * 16).astype(np.int32)  # 4 fractional bits (shift=4)

    def _finish(self, mask: np.ndarray, blur: float) -> np.ndarray:
        m = mask.astype(np.float32) / 255.0
        if blur > 0:
            m = cv2.GaussianBlur(m, (0, 0), blur * self.unit)
        return m

    def polygon(self, *polys, blur: float = 0.0) -> np.ndarray:
        mask = np.zeros((self.n, self.n), np.uint8)
        cv2.fillPoly(mask, [self._fixed(p) for p in polys], 255, cv2.LINE_AA, shift=4)
        return self._finish(mask, blur)

    def line(self, pts, width: float, *, blur: float = 0.0, closed: bool = False) -> np.ndarray:
        mask = np.zeros((self.n, self.n), np.uint8)
        thickness = max(1, int(round(width * self.unit)))
        cv2.polylines(mask, [self._fixed(pts)], closed, 255, thickness, cv2.LINE_AA, shift=4)
        return self._finish(mask, blur)

    def ellipse(self, center, axes, *, angle: float = 0.0, blur: float = 0.0) -> np.ndarray:
        mask = np.zeros((self.n, self.n), np.uint8)
        c = tuple(int(v) for v in self._fixed(center)[0])
        a = (int(round(axes[0] * self.unit * 16)), int(round(axes[1] * self.unit * 16)))
        cv2.ellipse(mask, c, a, angle, 0, 360, 255, -1, cv2.LINE_AA, shift=4)
        return self._finish(mask, blur)


def _paint(img: np.ndarray, mask: np.ndarray, colour, opacity: float = 1.0) -> None:
    a = (mask * opacity)[..., None]
    img *= 1 - a
    img += a * np.asarray(colour, np.float32)


def _shade(img: np.ndarray, mask: np.ndarray, factor: float) -> None:
    """Multiply by ``factor`` where ``mask`` is 1 (darken < 1 < lighten)."""
    img *= (1 + mask * (factor - 1))[..., None]


@dataclass(eq=False)
class EyeRegion:
    """Where a blink happens: a box of the frame, the eye opening in it, and the lid-closure map."""

    rows: slice
    cols: slice
    inside: np.ndarray  # (h, w) 0..1 anti-aliased eye opening
    closure: np.ndarray  # (h, w) lid position (0 = upper lid line, 1 = lower lid line) of each pixel
    closed: np.ndarray  # (h, w, 4) the patch with the lid shut
    height_px: float  # height of the opening in pixels


@dataclass(eq=False)
class FaceLayers:
    size: int
    head: np.ndarray  # (S, S, 4) premultiplied RGBA, 0..255
    eyes: list[EyeRegion]
    glasses: np.ndarray | None  # (S, S, 4) premultiplied RGBA or None
    background: np.ndarray  # (S, S, 3)
    origin: tuple[float, float]  # pixel position of the face origin
    unit: float  # pixels per face unit
    landmarks: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (2,) pixels

    def px(self, pts) -> np.ndarray:
        pts = np.asarray(pts, float).reshape(-1, 2)
        return np.stack([self.origin[0] + pts[:, 0] * self.unit, self.origin[1] + pts[:, 1] * self.unit], axis=1)


def _eye_curves(ident: Identity, side: str) -> tuple[np.ndarray, np.ndarray]:
    lm = ident.landmarks
    inner, outer = lm[f"eye_inner_{side}"], lm[f"eye_outer_{side}"]
    upper = spline(np.array([inner, lm[f"lid_upper_{side}"], outer]), per_segment=16)
    lower = spline(np.array([inner, lm[f"lid_lower_{side}"], outer]), per_segment=16)
    return upper, lower


def _hair_cap(ident: Identity) -> np.ndarray:
    """Polygon of the hair over the top of the head, down to the hairline and the temples."""
    fw = np.abs(ident.contour[:, 0]).max()
    top = ident.contour[ident.contour[:, 1] < -0.25]
    top = top[np.argsort(np.arctan2(top[:, 1], top[:, 0]))]  # from the left temple over the top
    volume = {"short": 0.06, "long": 0.09, "receding": 0.04, "curly": 0.16}[ident.hair_style]
    c = np.array([0.0, -0.2])
    outer = c + (top - c) * (1 + volume)
    if ident.hair_style == "curly":
        angle = np.arctan2(outer[:, 1] - c[1], outer[:, 0] - c[0])
        outer = c + (outer - c) * (1 + 0.03 * np.sin(angle * 14))[:, None]
    h = ident.hairline
    line = spline(
        np.array(
            [
                (-fw * 0.98, -0.25),
                (-fw * 0.9, -0.6),
                (-0.55, h + 0.12),
                (0.0, h),
                (0.55, h + 0.12),
                (fw * 0.9, -0.6),
                (fw * 0.98, -0.25),
            ]
        )
    )
    return np.vstack([outer, line[::-1]])


def render_face(ident: Identity, size: int, *, supersample: int = SUPERSAMPLE) -> FaceLayers:
    """Draw ``ident`` on a ``size`` x ``size`` frame as warpable layers (see module docstring)."""
    n = size * supersample
    unit = ident.scale * n
    origin = (ident.center[0] * n, ident.center[1] * n)
    p = _Painter(n, origin, unit)
    lm = ident.landmarks
    skin = np.array(ident.skin, np.float32)

    # Shading of a rounded head lit from ``light``: normals of an ellipsoid over the face.
    ys, xs = np.mgrid[0:n, 0:n].astype(np.float32)
    fx, fy = (xs - origin[0]) / unit, (ys - origin[1]) / unit
    fw = float(np.abs(ident.contour[:, 0]).max())
    ex, ey = fx / (fw * 1.05), (fy + 0.05) / 1.45
    nz = np.sqrt(np.clip(1 - ex**2 - ey**2, 0.02, 1))
    lx, ly, lz = ident.light
    lambert = np.clip(ex * lx + ey * ly + nz * lz, 0, 1)
    shading = (0.55 + 0.5 * lambert).astype(np.float32)
    skin_img = skin * shading[..., None]

    rgb = np.zeros((n, n, 3), np.float32)
    alpha = np.zeros((n, n), np.float32)

    def cover(mask: np.ndarray, colour_img) -> None:
        nonlocal alpha
        _paint(rgb, mask, 0)  # premultiplied "over": fade what is under, add the new colour
        rgb[...] += mask[..., None] * colour_img
        alpha = alpha * (1 - mask) + mask

    hair = np.array(ident.hair, np.float32)
    if ident.hair_style == "long":
        back = p.polygon(np.array([(-1.05, -0.9), (-1.25, 0.2), (-1.3, 1.7), (1.3, 1.7), (1.25, 0.2), (1.05, -0.9)]))
        cover(back, hair * 0.8)
    shirt = p.polygon(
        spline(np.array([(-2.2, 2.4), (-2.0, 1.55), (-0.9, 1.28), (0.0, 1.35), (0.9, 1.28), (2.0, 1.55), (2.2, 2.4)]))
    )
    neck = p.polygon(np.array([(-0.5, 0.6), (-0.48, 1.45), (0.0, 1.6), (0.48, 1.45), (0.5, 0.6)]))
    cover(neck, skin * 0.78)
    _shade(rgb, p.ellipse(lm["chin_bottom"] + (0, 0.05), (0.55, 0.15), blur=0.05) * neck, 0.7)  # under the jaw
    cover(shirt, np.array(ident.shirt, np.float32) * (0.8 + 0.2 * shading[..., None]))
    for side in SIDES:
        ear = lm[f"ear_{side}"]
        cover(p.ellipse(ear, (0.13, 0.24), angle=SIGN[side] * 8), skin_img * 0.92)
    face = p.polygon(ident.contour)
    cover(face, skin_img)
    skin_mask = np.clip(face + neck * (1 - face), 0, 1)

    # Soft shadows and colour: eye sockets, cheeks, nose, folds, under the lip.
    for side in SIDES:
        s = SIGN[side]
        _shade(rgb, p.ellipse(lm[f"eye_center_{side}"] + (0, -0.02), (0.28, 0.17), blur=0.06), 0.88)
        _paint(rgb, p.ellipse(lm[f"cheek_{side}"] + (0.05 * s, 0.05), (0.2, 0.13), blur=0.09), (220, 110, 100), 0.12)
        fold = spline(
            np.array(
                [
                    lm[f"nasolabial_{side}"],
                    (lm[f"nasolabial_{side}"] + lm[f"nasolabial_end_{side}"]) / 2 + (0.03 * s, 0),
                    lm[f"nasolabial_end_{side}"],
                ]
            )
        )
        _shade(rgb, p.line(fold, 0.02, blur=0.015), 0.86)
        bridge = np.array([lm["nose_root"] + (0.07 * s, 0.05), lm[f"nose_side_{side}"], lm[f"ala_{side}"] + (-0.03 * s, -0.07)])
        _shade(rgb, p.line(spline(bridge), 0.035, blur=0.03), 0.9 if s * lx > 0 else 0.8)
        _shade(
            rgb,
            p.line(
                spline(
                    np.array(
                        [
                            lm[f"ala_{side}"] + (-0.02 * s, -0.07),
                            lm[f"ala_{side}"] + (0.01 * s, 0),
                            lm[f"nostril_{side}"] + (0.02 * s, 0.01),
                        ]
                    )
                ),
                0.018,
                blur=0.008,
            ),
            0.75,
        )
        _paint(rgb, p.ellipse(lm[f"nostril_{side}"], (0.045, 0.022), angle=-s * 15, blur=0.006), skin * 0.3, 0.9)
    _shade(rgb, p.ellipse(lm["nose_tip"] + (0.02, -0.03), (0.05, 0.035), blur=0.03), 1.1)
    _shade(rgb, p.ellipse(lm["lip_lower_bottom"] + (0, 0.06), (0.18, 0.04), blur=0.03), 0.85)

    # Mouth: lips, seam, highlight.
    cr, cl = lm["mouth_corner_R"], lm["mouth_corner_L"]
    upper_top = spline(
        np.array(
            [
                cr,
                lm["lip_upper_mid_R"],
                lm["lip_upper_peak_R"],
                lm["lip_upper_top"],
                lm["lip_upper_peak_L"],
                lm["lip_upper_mid_L"],
                cl,
            ]
        ),
        per_segment=8,
    )
    seam = spline(
        np.array([cr, (cr + lm["seam"]) / 2 + (0, 0.008), lm["seam"], (cl + lm["seam"]) / 2 + (0, 0.008), cl]), per_segment=8
    )
    lower_bottom = spline(np.array([cr, lm["lip_lower_mid_R"], lm["lip_lower_bottom"], lm["lip_lower_mid_L"], cl]), per_segment=8)
    lips = np.array(ident.lips, np.float32)
    _paint(rgb, p.polygon(np.vstack([upper_top, seam[::-1]])), lips * 0.9 * shading[..., None], 0.85)
    _paint(rgb, p.polygon(np.vstack([seam, lower_bottom[::-1]])), lips * shading[..., None], 0.85)
    _paint(rgb, p.ellipse(lm["lip_lower_bottom"] + (0, -0.03), (0.08, 0.015), blur=0.01), (255, 255, 255), 0.12)
    _paint(rgb, p.line(seam, 0.014, blur=0.004), lips * 0.35, 0.95)

    # Eyes: white, iris, pupil, highlight, lid lines and crease.
    for side in SIDES:
        upper, lower = _eye_curves(ident, side)
        opening = p.polygon(np.vstack([upper, lower[::-1]]))
        _paint(rgb, opening, np.array((236, 230, 225), np.float32) * (0.75 + 0.25 * shading[..., None]))
        centre = lm[f"eye_center_{side}"] + (-SIGN[side] * 0.005, 0.0)
        _paint(rgb, p.ellipse(centre, (0.075, 0.075)) * opening, ident.iris)
        _paint(rgb, p.ellipse(centre, (0.033, 0.033)) * opening, (15, 12, 12))
        _paint(rgb, p.ellipse(centre + (0.025, -0.025), (0.012, 0.012)) * opening, (255, 255, 255), 0.9)
        _shade(
            rgb,
            p.line(upper, 0.05, blur=0.01) * (1 - opening) + p.ellipse(lm[f"lid_upper_{side}"], (0.2, 0.02)) * opening * 0.7,
            0.55,
        )
        _paint(rgb, p.line(upper, 0.022, blur=0.004), (25, 18, 15), 0.9)  # lash line
        _shade(rgb, p.line(lower, 0.012, blur=0.01), 0.85)
        crease = spline(
            np.array(
                [
                    lm[f"eye_inner_{side}"] + (0.02 * SIGN[side], -0.03),
                    lm[f"lid_crease_{side}"],
                    lm[f"eye_outer_{side}"] + (0.02 * SIGN[side], -0.02),
                ]
            )
        )
        _shade(rgb, p.line(crease, 0.015, blur=0.012), 0.82)

    # Brows: a band along the inner-mid-outer curve, tapering outwards.
    for side in SIDES:
        centre = spline(np.array([lm[f"brow_inner_{side}"], lm[f"brow_mid_{side}"], lm[f"brow_outer_{side}"]]), per_segment=12)
        t = np.linspace(1.0, 0.35, len(centre))[:, None] * ident.brow_thickness / 2
        band = np.vstack([centre - (0, 1) * t, (centre + (0, 1) * t)[::-1]])
        _paint(rgb, p.polygon(band, blur=0.008), hair * 0.7, 0.9)

    if ident.stubble:
        beard = (
            p.polygon(
                np.vstack(
                    [
                        spline(
                            np.array(
                                [
                                    lm["ala_R"] + (-0.05, 0.05),
                                    lm["jaw_R"],
                                    lm["chin_bottom"],
                                    lm["jaw_L"],
                                    lm["ala_L"] + (0.05, 0.05),
                                ]
                            )
                        )
                    ]
                ),
                blur=0.05,
            )
            * face
        )
        _paint(rgb, beard, hair * 0.6, 0.35 * ident.stubble)

    cap = p.polygon(_hair_cap(ident), blur=0.01)
    cover(cap, hair * (0.75 + 0.35 * shading[..., None]))

    # Closed eyes: the opening filled with lid skin, the lashes at the bottom (for blinks).
    closed_rgb = rgb.copy()
    openings = []
    for side in SIDES:
        upper, lower = _eye_curves(ident, side)
        # the opening and the lash line above it: the closing lid covers both, carrying the lashes down
        lid = np.maximum(p.polygon(np.vstack([upper, lower[::-1]])), p.line(upper, 0.05))
        openings.append((lid, upper, lower))
        _paint(closed_rgb, lid, skin_img * 0.86)
        shut = upper * 0.2 + lower * 0.8
        _paint(closed_rgb, p.line(shut, 0.022, blur=0.006), (30, 22, 18), 0.85)

    # Downscale to the frame size (area average = the anti-aliasing).
    def down(img: np.ndarray) -> np.ndarray:
        return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)

    head_rgb, head_a, skin_small = down(rgb), down(alpha), down(skin_mask)
    closed_small = down(closed_rgb)
    texture = _skin_texture(size, ident, skin_small, down(cap))
    head = np.dstack([head_rgb * texture[..., None], head_a]).astype(np.float32)
    closed_head = np.dstack([closed_small * texture[..., None], head_a]).astype(np.float32)

    # cv2 puts pixel centres at integer coordinates: small pixel j averages big pixels ss*j .. ss*j+ss-1.
    half = (supersample - 1) / 2
    small_origin = ((origin[0] - half) / supersample, (origin[1] - half) / supersample)
    small_unit = unit / supersample
    layers = FaceLayers(
        size=size, head=head, eyes=[], glasses=None, background=_backdrop(size, ident), origin=small_origin, unit=small_unit
    )
    layers.landmarks = {name: layers.px(pt)[0] for name, pt in lm.items()}
    for opening, upper, lower in openings:
        layers.eyes.append(_eye_region(layers, down(opening), upper, lower, closed_head))
    if ident.glasses:
        layers.glasses = _glasses(ident, p, down)
    return layers


def _skin_texture(size: int, ident: Identity, skin: np.ndarray, hair: np.ndarray) -> np.ndarray:
    """Multiplicative texture (S, S): blotches and pores on the skin, strands in the hair.

    Skin texture is what makes skin motion visible away from the edges (cheeks, forehead, chin).
    """
    rng = np.random.default_rng(ident.seed)
    blotch = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), size / 60)
    blotch /= blotch.std() + 1e-6
    pores = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), 0.6)
    pores /= pores.std() + 1e-6
    strands = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), sigmaX=0.5, sigmaY=size / 40)
    strands /= strands.std() + 1e-6
    t = 1 + ident.texture * (0.015 * blotch + 0.025 * pores) * skin + 0.12 * strands * hair
    return t.astype(np.float32)


def _backdrop(size: int, ident: Identity) -> np.ndarray:
    """A static backdrop (S, S, 3): a vertical gradient between two colours with faint texture."""
    rng = np.random.default_rng(ident.seed + 1)
    g = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    a, b = np.array(ident.backdrop[0], np.float32), np.array(ident.backdrop[1], np.float32)
    img = a * (1 - g) + b * g + np.zeros((size, size, 1), np.float32)
    texture = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), size / 30)
    return img * (1 + 0.04 * texture / (texture.std() + 1e-6))[..., None]


def _eye_region(
    layers: FaceLayers, inside: np.ndarray, upper: np.ndarray, lower: np.ndarray, closed_head: np.ndarray
) -> EyeRegion:
    up, lo = layers.px(upper), layers.px(lower)
    up, lo = up[np.argsort(up[:, 0])], lo[np.argsort(lo[:, 0])]  # np.interp needs increasing x (right eye runs right to left)
    x0, x1 = int(np.floor(up[:, 0].min())) - 2, int(np.ceil(up[:, 0].max())) + 3
    y0, y1 = int(np.floor(up[:, 1].min())) - 2, int(np.ceil(lo[:, 1].max())) + 2
    rows, cols = slice(max(y0, 0), y1), slice(max(x0, 0), x1)
    xs = np.arange(cols.start, cols.stop, dtype=np.float32)
    ys = np.arange(rows.start, rows.stop, dtype=np.float32)[:, None]
    top = np.interp(xs, up[:, 0], up[:, 1])[None, :]
    bottom = np.interp(xs, lo[:, 0], lo[:, 1])[None, :]
    closure = ((ys - top) / np.maximum(bottom - top, 0.3)).astype(np.float32)
    return EyeRegion(
        rows=rows,
        cols=cols,
        inside=inside[rows, cols].astype(np.float32),
        closure=closure,
        closed=closed_head[rows, cols].copy(),
        height_px=float((lo[:, 1] - np.interp(lo[:, 0], up[:, 0], up[:, 1])).max()),
    )


def _glasses(ident: Identity, p: _Painter, down) -> np.ndarray:
    lm = ident.landmarks
    rim = np.zeros((p.n, p.n), np.float32)
    lens = np.zeros((p.n, p.n), np.float32)
    theta = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    for side in SIDES:
        c = lm[f"eye_center_{side}"] + (SIGN[side] * 0.02, 0.01)
        rx, ry = 0.3, 0.2
        if ident.glasses == "round":
            outline = np.stack([c[0] + rx * np.cos(theta), c[1] + ry * np.sin(theta)], 1)
        else:  # a rounded rectangle: superellipse
            outline = np.stack(
                [
                    c[0] + rx * np.sign(np.cos(theta)) * np.abs(np.cos(theta)) ** 0.4,
                    c[1] + ry * np.sign(np.sin(theta)) * np.abs(np.sin(theta)) ** 0.4,
                ],
                1,
            )
        rim = np.maximum(rim, p.line(outline, 0.03, closed=True))
        lens = np.maximum(lens, p.polygon(outline))
        arm = np.array([c + (SIGN[side] * rx, -0.04), lm[f"ear_{side}"] + (-SIGN[side] * 0.05, -0.1)])
        rim = np.maximum(rim, p.line(arm, 0.03))
    bridge = spline(
        np.array([lm["eye_center_R"] + (0.27, -0.02), lm["nose_root"] + (0, -0.03), lm["eye_center_L"] + (-0.27, -0.02)])
    )
    rim = np.maximum(rim, p.line(bridge, 0.025))
    a = np.clip(rim + 0.1 * lens * (1 - rim), 0, 1)  # a faint whitish tint on the lenses
    rgb = rim[..., None] * np.array(ident.glasses_colour, np.float32) + (0.1 * lens * (1 - rim))[..., None] * 235.0
    return np.dstack([down(rgb), down(a)]).astype(np.float32)
