"""Face detection, tracking and cropping with OpenCV's bundled Haar cascade (no model download).

    detector = FaceDetector()
    box = detector(frame)                       # FaceBox or None, frame uint8 RGB or gray (H, W[, 3])
    tracker = FaceTracker(detector, every=8)    # detect every 8th frame, smooth the box in between
    face = crop_face(frame, box, size=112, margin=1.6)   # uint8 (112, 112[, 3]), the box widened by margin

The cascade ships inside opencv-python-headless 4.x (``cv2.data.haarcascades``; OpenCV 5 dropped
it, hence the version pin). It is a frontal-face detector: enough for the frontal, lit recordings
of micro-expression work, and it finds the synthetic faces. Boxes are smoothed over time (an
exponential moving average) because a crop that jitters from frame to frame adds motion that a
micro-expression model would read as expression.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

CASCADE = "haarcascade_frontalface_alt2.xml"


# The square cropped around a detected face: its box widened by this factor (training and scoring alike).
FACE_MARGIN = 1.6


@dataclass(frozen=True)
class FaceBox:
    """A face in frame pixels: top-left corner and size."""

    x: float
    y: float
    w: float
    h: float

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2

    def square(self, margin: float = 1.0) -> FaceBox:
        """The centred square of side max(w, h) * margin (a detector's box is the inner face)."""
        side = max(self.w, self.h) * margin
        cx, cy = self.centre
        return FaceBox(cx - side / 2, cy - side / 2, side, side)

    def blend(self, other: FaceBox, weight: float) -> FaceBox:
        """(1 - weight) * self + weight * other, coordinate by coordinate."""
        a = np.array([self.x, self.y, self.w, self.h])
        b = np.array([other.x, other.y, other.w, other.h])
        return FaceBox(*((1 - weight) * a + weight * b).tolist())

    def near(self, other: FaceBox) -> bool:
        """Centres within half a box width (the wider of the two) of each other."""
        (ax, ay), (bx, by) = self.centre, other.centre
        return max(abs(ax - bx), abs(ay - by)) <= 0.5 * max(self.w, other.w)

    def as_list(self) -> list[float]:
        return [round(self.x, 2), round(self.y, 2), round(self.w, 2), round(self.h, 2)]


def _gray(frame: np.ndarray) -> np.ndarray:
    import cv2

    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


class FaceDetector:
    """The largest frontal face of a frame, found on a copy at most ``max_width`` pixels wide."""

    def __init__(self, *, scale_factor: float = 1.1, min_neighbors: int = 3, min_size: float = 0.1, max_width: int = 320) -> None:
        import cv2

        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE)
        if self.cascade.empty():
            raise RuntimeError(f"OpenCV's {CASCADE} did not load from {cv2.data.haarcascades}")
        self.scale_factor, self.min_neighbors, self.min_size, self.max_width = scale_factor, min_neighbors, min_size, max_width
        self._clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))

    def __call__(self, frame: np.ndarray) -> FaceBox | None:
        import cv2

        gray = _gray(frame)
        scale = min(1.0, self.max_width / gray.shape[1])
        small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
        # Local contrast (CLAHE), not a global histogram equalisation: in a bright, colourful scene
        # global equalisation spends the grey levels on the background and flattens a dark face.
        small = self._clahe.apply(small)
        side = max(12, int(self.min_size * min(small.shape)))
        faces, votes = self.cascade.detectMultiScale2(small, self.scale_factor, self.min_neighbors, minSize=(side, side))
        if len(faces) == 0:
            return None
        # The best-supported detection (most merged neighbours), not the largest: a textured
        # backdrop can give a big false positive, rarely a well-supported one. Size breaks ties.
        x, y, w, h = faces[max(range(len(faces)), key=lambda i: (int(votes[i]), faces[i][2] * faces[i][3]))]
        return FaceBox(float(x / scale), float(y / scale), float(w / scale), float(h / scale))


class FaceTracker:
    """Detect every ``every`` frames and follow the face with a box that moves only when it must.

    The box follows the coordinate-wise median of the last ``history`` detections near it: a
    Haar detector's box jitters by a scale step (10-20 % of its size) from frame to frame on a
    still face, and the median of a few does not. The box moves, by ``smoothing`` of the way
    (box = (1 - s) * box + s * median), only when that median is more than ``deadband`` (a share
    of the box size) away: a moving crop is motion the spotter would take for an expression.
    A detection more than half a box away is a jump, taken only when the next detection agrees
    (one false positive on the backdrop does not move the crop). Between detections the box holds.
    ``update`` returns None until a face has been seen (or ``start`` was given).
    """

    def __init__(
        self,
        detector: FaceDetector | None = None,
        *,
        every: int = 8,
        smoothing: float = 0.5,
        deadband: float = 0.1,
        history: int = 5,
        start: FaceBox | None = None,
    ) -> None:
        self.detector = detector or FaceDetector()
        self.every, self.smoothing, self.deadband = max(1, int(every)), float(smoothing), float(deadband)
        self.box: FaceBox | None = start
        self._recent: deque[FaceBox] = deque([start] if start else [], maxlen=max(1, int(history)))
        self._pending: FaceBox | None = None  # a far detection waiting for confirmation
        self.detections = 0

    def update(self, index: int, frame: np.ndarray) -> FaceBox | None:
        if index % self.every == 0 or self.box is None and index % max(1, self.every // 4) == 0:
            found = self.detector(frame)
            if found is not None:
                self.detections += 1
                self._follow(found)
        return self.box

    def _follow(self, found: FaceBox) -> None:
        if self.box is None:
            self.box = found
            self._recent.append(found)
            return
        if not self.box.near(found):  # a jump: taken only when the next detection confirms it
            if self._pending is not None and self._pending.near(found):
                self.box, self._pending = found, None
                self._recent.clear()
                self._recent.append(found)
            else:
                self._pending = found
            return
        self._pending = None
        self._recent.append(found)
        target = FaceBox(*np.median([[b.x, b.y, b.w, b.h] for b in self._recent], axis=0).tolist())
        if self._moved(target):
            self.box = self.box.blend(target, self.smoothing)

    def _moved(self, found: FaceBox) -> bool:
        (cx, cy), (fx, fy) = self.box.centre, found.centre
        limit = self.deadband * self.box.w
        return max(abs(cx - fx), abs(cy - fy), abs(self.box.w - found.w)) > limit


def crop_face(frame: np.ndarray, box: FaceBox, size: int, margin: float = FACE_MARGIN) -> np.ndarray:
    """The square around ``box`` widened by ``margin``, resized to ``size``; edges replicated outside the frame."""
    import cv2

    sq = box.square(margin)
    # an affine map from the square to the output: one resample, borders replicated
    scale = size / sq.w
    matrix = np.array([[scale, 0.0, -sq.x * scale], [0.0, scale, -sq.y * scale]], dtype=np.float64)
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(frame, matrix, (size, size), flags=interpolation, borderMode=cv2.BORDER_REPLICATE)


class FaceCrop:
    """Transform for training on raw (uncropped) recordings: one face box per clip, every frame cropped alike.

    Takes uint8 frames (T, H, W, 3); detects on the middle frame (then the others in turn if that
    fails); returns (T, size, size, 3). A clip with no face found keeps its whole frame (padded to a
    square) and counts in ``misses``: a few odd clips should not stop training.
    """

    def __init__(self, size: int, *, margin: float = FACE_MARGIN, detector: FaceDetector | None = None) -> None:
        self.size, self.margin = int(size), float(margin)
        self.detector = detector or FaceDetector()
        self.misses = 0

    def __repr__(self) -> str:  # part of a flow cache key: the same crop, the same key in every process
        return f"FaceCrop(size={self.size}, margin={self.margin})"

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        order = [len(frames) // 2] + [i for i in range(len(frames)) if i != len(frames) // 2]
        box = next((b for b in (self.detector(frames[i]) for i in order[:4]) if b is not None), None)
        if box is None:
            self.misses += 1
            h, w = frames.shape[1:3]
            box, margin = FaceBox(0, 0, w, h), 1.0
        else:
            margin = self.margin
        return np.stack([crop_face(f, box, self.size, margin) for f in frames])
