import numpy as np
import pytest

from mer.data.faces import FaceBox, FaceCrop, FaceDetector, FaceTracker, crop_face
from mer.data.synthetic import render_face, sample_identity


@pytest.fixture(scope="module")
def face_frame():
    """A synthetic face (128 px) placed at (200, 60) in a 480x270 grey frame."""
    layers = render_face(sample_identity(np.random.default_rng(3)), 128)
    from mer.data.synthetic import Nuisance, iter_video

    face = next(iter_video(layers, [], 1, 30.0, size=128, nuisance=Nuisance.none(), rng=np.random.default_rng(0)))
    frame = np.full((270, 480, 3), 110, np.uint8)
    frame[60:188, 200:328] = face
    return frame


def test_detector_finds_the_face_where_it_is(face_frame):
    box = FaceDetector()(face_frame)
    assert box is not None
    cx, cy = box.centre
    assert 200 < cx < 328 and 60 < cy < 188 and 40 < box.w < 140


def test_no_face_in_a_plain_frame():
    rng = np.random.default_rng(0)
    assert FaceDetector()(rng.integers(100, 120, (270, 480, 3), dtype=np.uint8)) is None


def test_crop_is_square_and_replicates_edges():
    frame = np.zeros((100, 100, 3), np.uint8)
    frame[:, :50] = 200
    crop = crop_face(frame, FaceBox(-20, 10, 60, 60), size=32, margin=1.0)
    assert crop.shape == (32, 32, 3)
    assert crop[:, 0].min() == 200  # left of the frame: the edge column repeated, not black


def test_tracker_smooths_jittery_detections(face_frame):
    class Jittery:
        def __init__(self):
            self.calls = 0

        def __call__(self, frame):
            self.calls += 1
            return FaceBox(100 + (10 if self.calls % 2 else -10), 50, 80, 80)

    detector = Jittery()
    tracker = FaceTracker(detector, every=2, smoothing=0.25)
    xs = [tracker.update(i, face_frame).x for i in range(40)]
    assert detector.calls == 20  # every 2nd frame only
    assert max(xs[10:]) - min(xs[10:]) < 10  # raw detections swing by 20 px


def test_face_crop_transform_crops_every_frame_alike(face_frame):
    frames = np.stack([face_frame] * 4)
    transform = FaceCrop(64)
    out = transform(frames)
    assert out.shape == (4, 64, 64, 3) and transform.misses == 0
    assert np.array_equal(out[0], out[3])
    assert out.std() > 20  # a face, not the flat background
    blank = FaceCrop(64)(np.full((4, 90, 120, 3), 110, np.uint8))
    assert blank.shape == (4, 64, 64, 3)
