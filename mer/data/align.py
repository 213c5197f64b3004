"""Face alignment by the eyes: one similarity transform per clip, found once, applied to every frame.

    locator = EyeLocator()
    found = locator(frame)                  # FaceEyes or None: the two eye centres, in frame pixels
    alignment = clip_alignment([locator(f) for f in some_frames], size=224)
    crop = alignment.apply(frame)           # uint8 (224, 224, 3): eyes level, a fixed distance apart

The eyes come from OpenCV's Haar cascades, which ship inside opencv-python-headless (no model
download, no new dependency): the frontal-face cascade of :mod:`mer.data.faces` finds the face,
then ``haarcascade_eye.xml`` (and ``haarcascade_eye_tree_eyeglasses.xml`` when it finds no pair)
the eyes in the upper part of the face box. Both cascades look for upright faces, so a frame whose
face is not found upright is searched again turned by +-10, 20 and 30 degrees, and what is found
there is turned back. Where a face is found but no pair of eyes, its eyes are placed where they
sit in a face box on average (``EYES_IN_FACE_BOX``): the alignment falls back to the face box.
Why these and not MTCNN, MediaPipe or YuNet: docs/architecture.md, "Dependencies and why".

The output framing matches the face crop of training and scoring on raw recordings
(:func:`mer.data.faces.crop_face`, the face box widened by ``FACE_MARGIN``): the eyes
``eye_distance`` of the side apart, their midpoint centred across and ``eye_height`` of the side
from the top.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mer.data.faces import FACE_MARGIN, FaceBox, FaceDetector, _gray

EYE_CASCADES = ("haarcascade_eye.xml", "haarcascade_eye_tree_eyeglasses.xml")
FACE_WIDTH = 160  # pixels: the face region is resized to this width before its eyes are looked for
SEARCH_ANGLES = (0.0, -10.0, 10.0, -20.0, 20.0, -30.0, 30.0)  # degrees the frame is turned to find an upright face

# Where the eyes sit in the Haar face box, as shares of its side: 0.40 apart, 0.38 down from its
# top (measured on 36 synthetic faces, medians 0.38 and 0.39, and on skimage's astronaut, 0.42 and 0.37).
EYES_IN_FACE_BOX = (0.40, 0.38)
# The same framing as crop_face's: the face box widened by FACE_MARGIN holds the eyes this far apart
# and this far down (shares of the crop's side).
EYE_DISTANCE = round(EYES_IN_FACE_BOX[0] / FACE_MARGIN, 3)  # 0.25
EYE_HEIGHT = round((EYES_IN_FACE_BOX[1] + (FACE_MARGIN - 1) / 2) / FACE_MARGIN, 3)  # 0.425


@dataclass(frozen=True)
class FaceEyes:
    """The eye centres of one face in frame pixels, (2, 2): the image's left eye first; ``from_eyes``
    False when they are estimated from the face box (no pair of eyes was found)."""

    eyes: np.ndarray
    from_eyes: bool


def _rotation(angle: float, centre: tuple[float, float]) -> np.ndarray:
    import cv2

    return cv2.getRotationMatrix2D(centre, angle, 1.0)


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """A (2, 3) affine map applied to points (N, 2)."""
    return points @ matrix[:, :2].T + matrix[:, 2]


class EyeLocator:
    """The face and its eyes in a frame (see the module doc); ``None`` when no face is found."""

    def __init__(self, detector: FaceDetector | None = None, *, angles: Sequence[float] = SEARCH_ANGLES) -> None:
        import cv2

        self.detector = detector or FaceDetector()
        self.angles = tuple(angles)
        self.cascades = [cv2.CascadeClassifier(cv2.data.haarcascades + name) for name in EYE_CASCADES]
        if any(c.empty() for c in self.cascades):
            raise RuntimeError(f"OpenCV's eye cascades {EYE_CASCADES} did not load from {cv2.data.haarcascades}")
        self._clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))

    def __call__(self, frame: np.ndarray) -> FaceEyes | None:
        import cv2

        gray = _gray(frame)
        h, w = gray.shape
        face_only = None
        for angle in self.angles:
            # the frame turned by ``angle``: a face tilted the other way is upright in it
            turn = _rotation(angle, (w / 2, h / 2))
            upright = gray if angle == 0 else cv2.warpAffine(gray, turn, (w, h), borderMode=cv2.BORDER_REPLICATE)
            box = self.detector(upright)
            if box is None:
                continue
            eyes = self.eye_pair(upright, box)
            back = cv2.invertAffineTransform(turn)
            if eyes is not None:
                return FaceEyes(_apply(back, eyes), True)
            if face_only is None:
                face_only = FaceEyes(_apply(back, eyes_in_box(box)), False)
        return face_only

    def eye_pair(self, gray: np.ndarray, box: FaceBox) -> np.ndarray | None:
        """The eye centres (2, 2) in the upper part of an upright face ``box``, or None."""
        import cv2

        top, bottom = int(max(0, box.y + 0.15 * box.h)), int(min(gray.shape[0], box.y + 0.6 * box.h))
        left, right = int(max(0, box.x)), int(min(gray.shape[1], box.x + box.w))
        if bottom - top < 8 or right - left < 8:
            return None
        # the face brought to FACE_WIDTH pixels: eyes of a small face are larger than the cascade's
        # 20-px window, and the candidates' sizes are the same at every face size
        zoom = FACE_WIDTH / box.w
        region = cv2.resize(gray[top:bottom, left:right], None, fx=zoom, fy=zoom, interpolation=cv2.INTER_LINEAR)
        region = self._clahe.apply(region)
        smallest, largest = int(0.12 * FACE_WIDTH), int(0.4 * FACE_WIDTH)
        for cascade in self.cascades:
            # every window the cascade accepts, grouped as detectMultiScale groups them (3 neighbours)
            hits = cascade.detectMultiScale(region, 1.05, 0, minSize=(smallest, smallest), maxSize=(largest, largest))
            if len(hits) < 2:
                continue
            grouped, votes = cv2.groupRectangles([list(map(int, h)) for h in hits], 3, 0.2)
            windows = _centres(hits, zoom, left, top)
            candidates = [(x, y, int(v)) for (x, y), v in zip(_centres(grouped, zoom, left, top), np.ravel(votes))]
            pair = _best_pair(candidates, box)
            if pair is not None:
                # each eye: the median centre of the windows around it, steadier than its group's mean box
                near = [windows[np.linalg.norm(windows - eye, axis=1) <= 0.08 * box.w] for eye in pair]
                return np.array([np.median(w, axis=0) if len(w) else eye for w, eye in zip(near, pair)])
        return None


def _centres(rects, zoom: float, left: int, top: int) -> np.ndarray:
    """Centres (N, 2) in frame pixels of boxes (x, y, w, h) found in the zoomed region at (left, top)."""
    return np.array([(x + w / 2, y + h / 2) for x, y, w, h in rects]).reshape(-1, 2) / zoom + [left, top]


def _best_pair(centres: list[tuple[float, float, int]], box: FaceBox) -> np.ndarray | None:
    """The best-supported pair of eye candidates (x, y, votes) that look like two eyes of ``box``:
    one each side of its middle, 0.25-0.65 of its width apart, their line within ~17 degrees of level."""
    middle = box.x + box.w / 2
    pairs = [
        (a[2] + b[2], np.array([a[:2], b[:2]]))
        for a in centres
        if a[0] < middle
        for b in centres
        if b[0] >= middle and 0.25 * box.w <= b[0] - a[0] <= 0.65 * box.w and abs(b[1] - a[1]) <= 0.3 * (b[0] - a[0])
    ]
    return max(pairs, key=lambda p: p[0])[1] if pairs else None


def eyes_in_box(box: FaceBox) -> np.ndarray:
    """Where the eyes of an upright face sit on average in its Haar box (EYES_IN_FACE_BOX), (2, 2)."""
    span, down = EYES_IN_FACE_BOX
    y = box.y + down * box.h
    return np.array([[box.x + (0.5 - span / 2) * box.w, y], [box.x + (0.5 + span / 2) * box.w, y]])


@dataclass(frozen=True)
class Alignment:
    """The similarity transform of one clip: rotate the eye line level, scale the eyes to a fixed
    distance, crop a ``size`` square; ``by`` says whether it rests on found eyes or the face box."""

    matrix: np.ndarray  # (2, 3) frame pixels -> crop pixels
    size: int
    eyes: np.ndarray  # (2, 2) the eye centres it was made from, frame pixels
    by: str  # "eyes" | "face_box"

    @property
    def angle(self) -> float:
        """Degrees the eye line was tilted in the frame (counter-clockwise as shown); the crop turns it back."""
        dx, dy = self.eyes[1] - self.eyes[0]
        return math.degrees(math.atan2(-dy, dx))

    @property
    def scale(self) -> float:
        return float(math.hypot(*self.matrix[:, 0]))

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """The aligned crop of a uint8 frame (H, W[, 3]) -> (size, size[, 3]); edges replicated."""
        import cv2

        matrix = self.matrix
        if self.scale < 1:  # shrink with area averaging first: a warp alone samples, and aliases fine detail
            h, w = frame.shape[:2]
            side = (max(1, round(w * self.scale)), max(1, round(h * self.scale)))
            frame = cv2.resize(frame, side, interpolation=cv2.INTER_AREA)
            sx, sy = frame.shape[1] / w, frame.shape[0] / h
            # a pixel p' of the smaller frame is p = (p' + 0.5) / s - 0.5 of the frame (pixel centres)
            linear = matrix[:, :2] @ np.diag([1 / sx, 1 / sy])
            matrix = np.hstack([linear, (matrix[:, :2] @ [0.5 / sx - 0.5, 0.5 / sy - 0.5] + matrix[:, 2])[:, None]])
        return cv2.warpAffine(frame, matrix, (self.size, self.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def as_dict(self) -> dict:
        return {
            "by": self.by,
            "eyes": np.round(self.eyes, 2).tolist(),
            "angle": round(self.angle, 3),
            "scale": round(self.scale, 5),
            "matrix": np.round(self.matrix, 6).tolist(),
        }


def align_eyes(eyes: np.ndarray, size: int, *, eye_distance: float = EYE_DISTANCE, eye_height: float = EYE_HEIGHT) -> np.ndarray:
    """The (2, 3) similarity map taking eye centres (2, 2) to level eyes ``eye_distance * size`` apart,
    their midpoint at (size / 2, eye_height * size)."""
    left, right = np.asarray(eyes, np.float64)
    dx, dy = right - left
    distance = math.hypot(dx, dy)
    if distance < 1e-6:
        raise ValueError("the two eyes are at the same point")
    scale = eye_distance * size / distance
    cos, sin = scale * dx / distance, scale * dy / distance  # scale * (cos, sin) of the eye line's angle
    linear = np.array([[cos, sin], [-sin, cos]])  # rotate by minus that angle, then scale
    target = np.array([size / 2, eye_height * size])
    return np.hstack([linear, (target - linear @ ((left + right) / 2))[:, None]])


def clip_alignment(
    found: Sequence[FaceEyes | None], size: int, *, eye_distance: float = EYE_DISTANCE, eye_height: float = EYE_HEIGHT
) -> Alignment | None:
    """One alignment from the faces found on a few frames of a clip; None when no frame had a face.

    The eyes are the coordinate-wise median of the frames where a pair of eyes was found (one
    blink or false pair among several frames does not move it), else of the face-box estimates.
    """
    with_eyes = [f.eyes for f in found if f is not None and f.from_eyes]
    estimated = [f.eyes for f in found if f is not None and not f.from_eyes]
    if not with_eyes and not estimated:
        return None
    eyes = np.median(np.stack(with_eyes or estimated), axis=0)
    matrix = align_eyes(eyes, size, eye_distance=eye_distance, eye_height=eye_height)
    return Alignment(matrix, int(size), eyes, "eyes" if with_eyes else "face_box")
