"""Spotting: the MEGC protocol functions on hand-made intervals, and the streaming spotter on long
synthetic recordings with known events and blinks."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mer.data.synthetic import read_long_video_info, write_long_video
from mer.scoring.spotting import Interval, MotionSpotter, SpottingConfig, find_intervals, spot
from mer.scoring.spotting_eval import evaluate_spotting, interval_iou


def test_interval_iou_counts_inclusive_frames():
    assert interval_iou((10, 19), (15, 24)) == pytest.approx(5 / 15)
    assert interval_iou(Interval(0, 2, 4), (0, 4)) == 1.0
    assert interval_iou((0, 4), (5, 9)) == 0.0
    assert interval_iou((0, 1, 9), (0, 4)) == pytest.approx(5 / 10)


def test_evaluation_matches_each_true_interval_once_best_pairs_first():
    truth = [(100, 110), (200, 220)]
    predicted = [(101, 111), (99, 112), (205, 221), (400, 410)]  # two candidates for the first, one false alarm
    counts = evaluate_spotting(predicted, truth)
    assert (counts["tp"], counts["fp"], counts["fn"]) == (2, 2, 0)
    assert counts["precision"] == 0.5 and counts["recall"] == 1.0 and counts["f1"] == pytest.approx(2 / 3)
    # IoU just under 0.5 is a miss: [0, 9] vs [5, 14] share 5 of 15 frames.
    assert evaluate_spotting([(5, 14)], [(0, 9)])["tp"] == 0
    assert evaluate_spotting([], [])["f1"] == 0.0


def bump(n: int, centre: int, half: int, height: float) -> np.ndarray:
    x = np.arange(n)
    return height * np.clip(1 - np.abs(x - centre) / half, 0, None)


def test_find_intervals_on_a_signal_keeps_peaks_above_the_noise_and_limits_durations():
    fps, rng = 100.0, np.random.default_rng(0)
    signal = 0.05 * rng.standard_normal(3000) + np.linspace(0, 2, 3000)  # noise on a slow drift
    signal += bump(3000, 500, 10, 3.0) + bump(3000, 1500, 12, 2.5) + bump(3000, 2500, 150, 3.0)  # two MEs, one slow swell
    config = SpottingConfig(max_duration_ms=500.0)
    found = find_intervals(signal, fps, config)
    apexes = [iv.apex for iv in found]
    assert any(abs(a - 500) <= 1 for a in apexes) and any(abs(a - 1500) <= 1 for a in apexes)
    assert all(iv.n_frames <= config.frames(500.0, fps) for iv in found)
    hit = next(iv for iv in found if abs(iv.apex - 500) <= 1)
    assert interval_iou(hit, (490, 510)) >= 0.5 and hit.score >= 1.0
    # Pure noise: the robust threshold finds (almost) nothing, unlike a max-relative one.
    assert len(find_intervals(0.05 * rng.standard_normal(3000), fps, config)) <= 1


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    write_long_video(path, seconds=24, fps=30, n_events=5, size=96, seed=1000, blink_rate=0.3)
    return path


def face_frames(path):
    import av

    info = read_long_video_info(path)
    x, y, size = info.face
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")[y : y + size, x : x + size]


def test_spotter_finds_synthetic_micro_expressions_among_blinks(long_video):
    info = read_long_video_info(long_video)
    assert len(info.blinks) >= 3  # distractors are really there
    truth = [(e.onset, e.offset) for e in info.events]
    spotter = MotionSpotter(info.fps, SpottingConfig())
    buffered = 0
    for face in face_frames(long_video):
        spotter.push(face)
        buffered = max(buffered, spotter.n_buffered)
    found = spotter.finish()
    assert buffered == 2 * spotter.k + 1  # streaming: only the window is held
    assert len(spotter.signal) == info.n_frames
    ours = evaluate_spotting(found, truth)
    assert ours["recall"] >= 0.6 and ours["precision"] >= 0.5, ours
    # Blinks (brief, local, like an ME) are not taken for expressions: the eye band is masked.
    blink_hits = sum(
        any(interval_iou(iv, b) > 0 for b in info.blinks) and not any(interval_iou(iv, t) > 0 for t in truth) for iv in found
    )
    assert blink_hits <= 1
    # The same result from the one-call helper.
    assert spot(face_frames(long_video), info.fps) == found


def test_a_still_face_yields_no_intervals():
    rng = np.random.default_rng(0)
    face = np.full((64, 64), 120, np.uint8)
    frames = [np.clip(face + rng.normal(0, 2, face.shape), 0, 255).astype(np.uint8) for _ in range(300)]
    assert spot(frames, 30.0) == []


def test_bad_settings_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="top_blocks"):
        SpottingConfig(grid=2, top_blocks=5)
    with pytest.raises(ValueError, match="eye band"):
        MotionSpotter(30.0, replace(SpottingConfig(), grid=1, top_blocks=1, eye_band=(0.0, 1.0)))
    with pytest.raises(ValueError, match="onset <= apex <= offset"):
        Interval(5, 3, 8)


def test_a_crop_shift_is_not_taken_for_an_expression():
    # A still, textured face whose crop moves by 4 px at frame 150 (the tracker shifted its box).
    rng = np.random.default_rng(0)
    texture = rng.integers(60, 200, (80, 80)).astype(np.uint8)
    frames = [texture[(4 if i >= 150 else 0) :][:64, :64] for i in range(300)]
    unflagged = spot(frames, 30.0)
    assert any(iv.onset <= 150 <= iv.offset for iv in unflagged)  # the shift does look like motion
    spotter = MotionSpotter(30.0)
    for i, face in enumerate(frames):
        spotter.push(face, moved=i == 150)
    assert spotter.finish() == []
    assert spotter.masked_frames == 2 * spotter.k
