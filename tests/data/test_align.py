import math

import cv2
import numpy as np
import pytest

from mer.data.align import EYE_DISTANCE, EYE_HEIGHT, Alignment, EyeLocator, FaceEyes, align_eyes, clip_alignment
from tests.helpers import face_in_frame, turned

SIZE = 112


def in_crop(alignment: Alignment, points: np.ndarray) -> np.ndarray:
    return points @ alignment.matrix[:, :2].T + alignment.matrix[:, 2]


@pytest.mark.parametrize("seed, angle, scale", [(1, 12.0, 1.0), (2, -15.0, 1.2), (4, 0.0, 0.8), (5, 22.0, 0.9)])
def test_a_turned_and_scaled_face_comes_out_level_at_the_fixed_eye_distance(seed, angle, scale):
    frames, eyes = face_in_frame(seed)
    frame = frames[0]
    frame, eyes = turned(frame, eyes, angle, scale)
    found = EyeLocator()(frame)
    assert found is not None and found.from_eyes
    alignment = clip_alignment([found], SIZE)
    dx, dy = eyes[1] - eyes[0]
    assert alignment.by == "eyes" and alignment.angle == pytest.approx(math.degrees(math.atan2(-dy, dx)), abs=3)
    left, right = in_crop(alignment, eyes)  # the true eyes, where the crop puts them
    assert math.degrees(abs(math.atan2(right[1] - left[1], right[0] - left[0]))) < 3  # level
    assert np.linalg.norm(right - left) == pytest.approx(EYE_DISTANCE * SIZE, rel=0.1)
    assert (left + right) / 2 == pytest.approx([SIZE / 2, EYE_HEIGHT * SIZE], abs=0.1 * EYE_DISTANCE * SIZE)
    crop = alignment.apply(frame)
    assert crop.shape == (SIZE, SIZE, 3) and crop.dtype == np.uint8


def test_a_real_face_turned_by_15_degrees_aligns_to_the_same_crop():
    """skimage's astronaut (a real face, shipped with scikit-image): its eye line turns with the image,
    and the aligned crops of the upright and the turned photograph are nearly the same picture."""
    data = pytest.importorskip("skimage.data")
    image = data.astronaut()
    locator = EyeLocator()
    upright = locator(image)
    turned_image, _ = turned(image, np.zeros((0, 2)), 15.0, 1.0)
    tilted = locator(turned_image)
    assert upright is not None and upright.from_eyes and tilted is not None and tilted.from_eyes
    a, b = clip_alignment([upright], SIZE), clip_alignment([tilted], SIZE)
    assert b.angle - a.angle == pytest.approx(15.0, abs=2.5)
    assert a.scale == pytest.approx(b.scale, rel=0.1)
    difference = np.abs(a.apply(image).astype(float) - b.apply(turned_image).astype(float)).mean()
    assert difference < 15  # grey levels: the same face, framed alike (a misaligned crop differs by ~40)


def test_align_eyes_puts_the_eyes_exactly_where_asked():
    eyes = np.array([[100.0, 80.0], [140.0, 50.0]])  # 50 px apart, tilted
    matrix = align_eyes(eyes, 200, eye_distance=0.3, eye_height=0.4)
    mapped = eyes @ matrix[:, :2].T + matrix[:, 2]
    assert mapped == pytest.approx(np.array([[70.0, 80.0], [130.0, 80.0]]))


@pytest.mark.parametrize("scale", [0.3, 2.0])
def test_the_crop_lands_a_frame_point_where_the_transform_says_at_any_scale(scale):
    """Shrinking first (area averaging) and then warping keeps the geometry of the one transform."""
    frame = np.zeros((400, 600), np.uint8)
    point = np.array([306.0, 176.0])
    cv2.circle(frame, (306, 176), 5, 255, -1)
    apart = EYE_DISTANCE * 64 / scale  # frame pixels between the eyes: ``scale`` crop pixels per frame pixel
    eyes = np.array([[300.0, 180.0], [300.0 + apart * math.cos(0.3), 180.0 - apart * math.sin(0.3)]])  # tilted 17 degrees
    alignment = Alignment(align_eyes(eyes, 64), 64, eyes, "eyes")
    assert alignment.scale == pytest.approx(scale, rel=0.01)
    crop = alignment.apply(frame).astype(float)
    ys, xs = np.mgrid[0:64, 0:64]
    centroid = np.array([(xs * crop).sum(), (ys * crop).sum()]) / crop.sum()
    assert centroid == pytest.approx(in_crop(alignment, point[None])[0], abs=0.3)


def test_the_median_of_a_few_frames_ignores_one_wrong_pair_and_face_boxes_are_the_fallback():
    good = np.array([[100.0, 100.0], [140.0, 100.0]])
    frames = [FaceEyes(good + 0.5, True), FaceEyes(good - 0.5, True), FaceEyes(good + [[0, 30], [0, -30]], True), None]
    alignment = clip_alignment(frames, SIZE)
    assert alignment.by == "eyes" and np.abs(alignment.eyes - good).max() <= 0.5  # the wrong pair is 30 px off
    box_only = clip_alignment([FaceEyes(good, False), None], SIZE)
    assert box_only.by == "face_box" and box_only.angle == 0
    assert clip_alignment([FaceEyes(good, False), FaceEyes(good + [[0, 9], [0, -9]], True)], SIZE).by == "eyes"
    assert clip_alignment([None, None], SIZE) is None


def test_a_face_whose_eyes_are_not_found_falls_back_to_its_box_without_rotation(monkeypatch):
    frames, eyes = face_in_frame(1)
    frame = frames[0]
    locator = EyeLocator()
    monkeypatch.setattr(locator, "eye_pair", lambda gray, box: None)
    found = locator(frame)
    assert found is not None and not found.from_eyes
    assert found.eyes[0, 1] == found.eyes[1, 1]  # the box's estimate: level
    assert np.abs(found.eyes - eyes).max() < 0.5 * np.linalg.norm(eyes[1] - eyes[0])  # roughly where the eyes are
    assert EyeLocator()(np.full((200, 300, 3), 120, np.uint8)) is None
