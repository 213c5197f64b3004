"""The synthetic DFME-style generator: events where annotated, AUs where FACS puts them,
imbalanced classes, determinism, readable output, the cache and the command line."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import mer.data.synthetic.generator as generate_module
from mer.data.aus import parse_aus
from mer.data.dataset import DEFAULT_AUS
from mer.data.formats import read_annotations
from mer.data.synthetic import (
    CLASS_ORDER,
    SUPPORTED_AUS,
    Blink,
    Canvas,
    Event,
    Nuisance,
    SyntheticSettings,
    class_counts,
    dataset_digest,
    displacement_field,
    ensure_dataset,
    generate,
    plan_clips,
    render_face,
    render_video,
    sample_identity,
    sample_timing,
    subject_layers,
)
from mer.data.synthetic.cli import main
from mer.data.synthetic.generator import ClipTask, render_clip
from mer.data.video import list_frame_files, open_video

TINY = dict(n_subjects=2, clips_per_subject=3, size=64, clip_seconds=0.2, max_ms=80.0, workers=1)
STILL = dict(head_motion=0.0, head_rotation=0.0, blink_rate=0.0, flicker=0.0, noise=0.0)


@pytest.fixture(scope="module")
def face():
    return render_face(sample_identity(np.random.default_rng(7)), 112)


def motion(frames: np.ndarray, reference: int, mask: np.ndarray) -> np.ndarray:
    """Mean |frame - reference frame| over ``mask``, per frame: (T,)."""
    diff = np.abs(frames.astype(np.float32) - frames[reference].astype(np.float32)).mean(-1)
    return (diff * mask).sum((1, 2)) / mask.sum()


# ---- the event in time -----------------------------------------------------------------------


def test_rendered_motion_peaks_at_the_annotated_apex():
    settings = replace(SyntheticSettings(**TINY, **STILL), amplitude=3.0)
    layers = subject_layers(settings.seed, 0, settings.size)
    mask = layers.head[..., 3] > 0.5
    for clip, emotion in enumerate(("happiness", "surprise", "disgust", "anger")):
        frames, ann = render_clip(ClipTask(0, clip, emotion, settings))
        assert frames.shape == (ann["n_frames"], 64, 64, 3)
        m = motion(frames, ann["onset"], mask)
        assert abs(int(np.argmax(m)) - ann["apex"]) <= 1, (emotion, ann)
        assert m[ann["apex"]] > 0.05  # the event is visible (a faint, local change averaged over the face)
        # before onset and after offset the face is at rest (no nuisances)
        assert m[: ann["onset"]].max() < 0.05 * m[ann["apex"]] and m[ann["offset"] :].max() < 0.05 * m[ann["apex"]]


def test_event_profile_rises_and_falls_with_its_maximum_at_the_apex():
    event = Event(10, 14, 30, "6+12")
    p = event.profile(40)
    assert int(np.argmax(p)) == 14 and p[14] == 1.0
    assert np.all(np.diff(p[10:15]) > 0) and np.all(np.diff(p[14:31]) < 0)
    assert p[:11].sum() == 0 and p[30:].sum() == 0
    with pytest.raises(ValueError, match="onset < apex < offset"):
        Event(10, 10, 30, "12")


def test_timing_short_events_covering_a_minority_of_the_clip():
    rng = np.random.default_rng(0)
    durations = []
    for _ in range(500):
        n, onset, apex, offset = sample_timing(rng, fps=200, clip_seconds=0.6, min_ms=40, max_ms=500)
        assert 1 <= onset < apex < offset < n - 1
        assert (offset - onset + 1) / n < 0.5
        durations.append((offset - onset) * 1000 / 200)
    durations = np.array(durations)
    assert durations.min() >= 40 - 2.5 and durations.max() <= 500 + 2.5
    assert np.median(durations) < 200  # skewed towards short, like real MEs
    assert (durations > 300).mean() > 0.02  # but long ones happen (and lengthen their clip)


# ---- action units in space --------------------------------------------------------------------


def at(field: np.ndarray, layers, name: str) -> np.ndarray:
    x, y = np.round(layers.landmarks[name]).astype(int)
    return field[y, x]


# (AU, landmark, test of the displacement (dx, dy) there in px; +x is the image's right = subject's left)
EXPECTED = [
    ("1", "brow_inner_L", lambda d: d[1] < -1.0),
    ("1", "brow_inner_R", lambda d: d[1] < -1.0),
    ("2", "brow_outer_L", lambda d: d[1] < -1.0),
    ("4", "brow_inner_L", lambda d: d[1] > 0.5 and d[0] < -0.5),  # down and towards the midline
    ("4", "brow_inner_R", lambda d: d[1] > 0.5 and d[0] > 0.5),
    ("5", "lid_upper_L", lambda d: d[1] < -0.8),
    ("6", "cheek_L", lambda d: d[1] < -1.0),
    ("7", "lid_lower_L", lambda d: d[1] < -0.8),
    ("9", "ala_L", lambda d: d[1] < -1.0),
    ("10", "lip_upper_mid_L", lambda d: d[1] < -1.0),
    ("12", "mouth_corner_L", lambda d: d[0] > 0.8 and d[1] < -0.8),  # up and out
    ("12", "mouth_corner_R", lambda d: d[0] < -0.8 and d[1] < -0.8),
    ("14", "mouth_corner_L", lambda d: d[0] < -0.8),  # in
    ("15", "mouth_corner_L", lambda d: d[1] > 1.0),  # down
    ("17", "chin", lambda d: d[1] < -1.0),
    ("20", "mouth_corner_L", lambda d: d[0] > 1.0 and abs(d[1]) < 0.5 * d[0]),  # sideways
    ("23", "lip_upper_top", lambda d: d[1] > 0.5),  # lips narrow
    ("23", "lip_lower_bottom", lambda d: d[1] < -0.5),
    ("26", "chin", lambda d: d[1] > 1.5),  # jaw drops
]


@pytest.mark.parametrize("au, landmark, moves", EXPECTED, ids=[f"AU{a}-{n}" for a, n, _ in EXPECTED])
def test_each_au_moves_what_facs_says(face, au, landmark, moves):
    field = displacement_field(face, au, amplitude=2.0)
    assert moves(at(field, face, landmark)), at(field, face, landmark)


@pytest.mark.parametrize(
    "au, still",
    [
        ("1", "mouth_corner_L"),
        ("2", "chin"),
        ("4", "lip_upper_top"),
        ("12", "brow_mid_L"),
        ("15", "brow_inner_R"),
        ("26", "brow_outer_L"),
        ("5", "mouth_corner_R"),
    ],
)
def test_an_au_leaves_distant_regions_alone(face, au, still):
    field = displacement_field(face, au, amplitude=2.0)
    assert np.hypot(*at(field, face, still)) < 0.05


def test_lips_part_above_up_below_down(face):
    field = displacement_field(face, "25", amplitude=2.0)
    seam = face.landmarks["seam"]
    above, below = (
        field[int(round(seam[1] - 0.04 * face.unit)), int(round(seam[0]))],
        field[int(round(seam[1] + 0.05 * face.unit)), int(round(seam[0]))],
    )
    assert above[1] < -0.3 and below[1] > 0.8


def test_unilateral_au_moves_one_side_only(face):
    left = displacement_field(face, "L12", amplitude=2.0)
    right = displacement_field(face, "R12", amplitude=2.0)
    assert np.hypot(*at(left, face, "mouth_corner_L")) > 1.0 and np.hypot(*at(left, face, "mouth_corner_R")) < 0.05
    assert np.hypot(*at(right, face, "mouth_corner_R")) > 1.0 and np.hypot(*at(right, face, "mouth_corner_L")) < 0.05
    # the whole field lies on the subject's left (the image's right) of the midline
    midline = int(round(face.landmarks["nose_tip"][0]))
    magnitude = np.hypot(left[..., 0], left[..., 1])
    assert magnitude[:, midline + 1 :].sum() > 20 * magnitude[:, : midline - 1].sum()


def region_change(frames: np.ndarray, box) -> float:
    (y0, y1), (x0, x1) = box
    return float(np.abs(frames[1].astype(np.float32) - frames[0].astype(np.float32))[y0:y1, x0:x1].mean())


def test_rendered_pixels_change_where_the_au_acts(face):
    lm = face.landmarks
    u = face.unit
    mouth = (
        (int(lm["lip_upper_top"][1] - 0.1 * u), int(lm["lip_lower_bottom"][1] + 0.1 * u)),
        (int(lm["mouth_corner_R"][0] - 0.1 * u), int(lm["mouth_corner_L"][0] + 0.1 * u)),
    )
    brows = (
        (int(lm["brow_mid_L"][1] - 0.15 * u), int(lm["brow_inner_L"][1] + 0.1 * u)),
        (int(lm["brow_outer_R"][0]), int(lm["brow_outer_L"][0])),
    )

    def apex_vs_neutral(aus: str) -> np.ndarray:
        frames = render_video(face, [Event(1, 5, 9, aus)], 10, 200, nuisance=Nuisance.none(), rng=np.random.default_rng(0))
        return frames[[0, 5]]

    smile = apex_vs_neutral("12")
    assert region_change(smile, mouth) > 4 * region_change(smile, brows)
    raise_brows = apex_vs_neutral("1+2")
    assert region_change(raise_brows, brows) > 4 * region_change(raise_brows, mouth)
    half = apex_vs_neutral("L12")
    (y0, y1), (x0, x1) = mouth
    mid = int(round(lm["nose_tip"][0]))
    assert region_change(half, ((y0, y1), (mid + 1, x1))) > 5 * region_change(half, ((y0, y1), (x0, mid - 1)))


# AU25 (lips part) is the exception: its movers diverge at the seam to open the mouth, and the
# warp mirrors a sliver of lip there at full intensity (determinant -0.24), under its dark seam line.
@pytest.mark.parametrize("au", [str(n) for n in SUPPORTED_AUS if n != 25])
def test_every_au_warps_without_folding_the_face_at_full_intensity(au):
    # the renderer shows at x what the neutral face had at x - d(x): where that map's Jacobian
    # determinant reaches 0 the face folds over itself (features duplicated or mirrored)
    worst = np.inf
    for subject in range(3):
        layers = render_face(sample_identity(np.random.default_rng(subject)), 112)
        d = displacement_field(layers, au, amplitude=3.0)  # the default amplitude, intensity 1
        dxx, dxy = np.gradient(d[..., 0], axis=1), np.gradient(d[..., 0], axis=0)
        dyx, dyy = np.gradient(d[..., 1], axis=1), np.gradient(d[..., 1], axis=0)
        worst = min(worst, float(((1 - dxx) * (1 - dyy) - dxy * dyx).min()))
    assert worst > 0.1, f"AU{au} folds the face: Jacobian determinant {worst:.2f}"


def test_blink_closes_the_eyes_only():
    layers = render_face(sample_identity(np.random.default_rng(3)), 112)
    blink = Blink(start=2, fps=200, duration_ms=150, depth=1.0)
    closure = blink.profile(40)
    assert closure.max() == 1.0 and 2 < int(np.argmax(closure)) < 2 + 30
    frames = render_video(layers, [], 40, 200, blinks=[blink], nuisance=Nuisance.none(), rng=np.random.default_rng(0))
    shut = int(np.argmax(closure))
    diff = np.abs(frames[shut].astype(np.float32) - frames[0].astype(np.float32)).mean(-1)
    in_eyes = sum(diff[e.rows, e.cols].sum() for e in layers.eyes)
    assert in_eyes > 0.9 * diff.sum() and in_eyes > 50
    # the lid-closure map runs from 0 at the upper lid to 1 at the lower lid, in both eyes
    for eye, side in zip(layers.eyes, ("L", "R")):
        x = int(round(layers.landmarks[f"eye_center_{side}"][0])) - eye.cols.start
        top, bottom = (int(round(layers.landmarks[f"lid_{k}_{side}"][1])) - eye.rows.start for k in ("upper", "lower"))
        assert abs(eye.closure[top, x]) < 0.35 and abs(eye.closure[bottom, x] - 1) < 0.35
        assert diff[eye.rows, eye.cols].sum() > 0.35 * in_eyes
    assert np.array_equal(frames[0], frames[-1])  # reopened


def test_long_video_on_a_canvas_holds_several_events_at_their_frames():
    layers = render_face(sample_identity(np.random.default_rng(5)), 64)
    events = [Event(5, 10, 20, "6+12"), Event(30, 36, 45, "1+2+5")]
    canvas = Canvas(width=120, height=90, x=40, y=10)
    frames = render_video(
        layers,
        events,
        50,
        30,
        blinks=[Blink(start=24, fps=30, duration_ms=100)],
        nuisance=Nuisance.none(),
        canvas=canvas,
        rng=np.random.default_rng(0),
    )
    assert frames.shape == (50, 90, 120, 3)
    mask = np.zeros((90, 120), bool)
    mask[10:74, 40:104] = True
    m = motion(frames, 0, mask)
    assert abs(int(np.argmax(m[:25])) - 10) <= 1
    assert abs(30 + int(np.argmax(m[30:])) - 36) <= 1
    outside = np.abs(frames[10].astype(np.float32) - frames[0].astype(np.float32))[:, :30].mean()
    assert outside == 0.0  # the background stays put


def test_subjects_differ():
    faces = [subject_layers(0, s, 64).head for s in range(4)]
    for i in range(4):
        for j in range(i + 1, 4):
            assert np.abs(faces[i] - faces[j]).mean() > 8


# ---- classes ---------------------------------------------------------------------------------


def test_class_counts_follow_the_configured_imbalance():
    counts = class_counts(288, 10.0)
    assert sum(counts.values()) == 288
    values = [counts[c] for c in CLASS_ORDER]
    assert values == sorted(values, reverse=True) and values[0] > values[-1]
    assert 9.0 <= values[0] / values[-1] <= 11.0
    assert class_counts(700, 8.0)["disgust"] / class_counts(700, 8.0)["contempt"] == pytest.approx(8.0, rel=0.06)
    plan = plan_clips(SyntheticSettings())
    planned = {c: sum(t.emotion == c for t in plan) for c in CLASS_ORDER}
    assert planned == class_counts(24 * 12, 10.0)
    per_subject = {s: {t.emotion for t in plan if t.subject == s} for s in range(24)}
    assert any(len(v) < 7 for v in per_subject.values())  # not every class for every subject


def test_the_au_observer_ceiling_is_exact():
    from collections import Counter

    from mer.data.synthetic.emotions import au_set_distribution, observer_ceiling, sample_aus

    # The exact distribution is what sample_aus draws: compare with 20000 draws of each emotion.
    rng = np.random.default_rng(0)
    for emotion in ("contempt", "disgust", "fear"):
        exact = au_set_distribution(emotion)
        assert sum(exact.values()) == pytest.approx(1.0)
        drawn = Counter(sample_aus(emotion, rng) for _ in range(20000))
        assert set(drawn) <= set(exact)
        for aus, p in sorted(exact.items(), key=lambda kv: -kv[1])[:5]:
            assert drawn[aus] / 20000 == pytest.approx(p, abs=0.01), (emotion, aus)
    # Full AUs and no extra AU: every emotion's set is its own, so the observer is perfect.
    assert observer_ceiling(keep=1.0, extra=0.0)["uf1"] == pytest.approx(1.0)
    ceiling = observer_ceiling()  # the default set: keep 0.7, extra 0.15, imbalance 10
    assert 0.94 < ceiling["uf1"] < 0.96 and ceiling["accuracy"] > ceiling["uf1"] - 0.05
    assert observer_ceiling(keep=0.4)["uf1"] < ceiling["uf1"]  # fewer kept AUs: more sets shared


def test_generator_models_the_default_aus():
    assert SUPPORTED_AUS == tuple(DEFAULT_AUS)


# ---- the data set on disk -------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    return {
        "a": generate(root / "a", **TINY),
        "b": generate(root / "b", **{**TINY, "workers": 2}),  # same seed, other scheduling
        "c": generate(root / "c", **{**TINY, "seed": 1}),
        "frames": generate(root / "frames", **{**TINY, "as_frames": True}),
    }


def decoded(annotations: Path) -> list[np.ndarray]:
    out = []
    for r in read_annotations(annotations, format="dfme"):
        with open_video(r.path, "pyav", expected_frames=r.n_frames) as source:
            out.append(source.get_frames(range(r.n_frames)))
    return out


def test_same_seed_same_bytes_and_frames_different_seed_different(tiny_sets):
    a, b, c = tiny_sets["a"], tiny_sets["b"], tiny_sets["c"]
    assert a.read_bytes() == b.read_bytes()
    # The rendered frames are bit-identical whatever the scheduling (here: rendered again in this process).
    tasks = plan_clips(SyntheticSettings(**{k: v for k, v in TINY.items() if k != "workers"}))
    for task in tasks[:3]:
        assert np.array_equal(render_clip(task)[0], render_clip(task)[0])
    # Encoded: the same bytes too (libx264 with mbtree on gave other pixels on each encode; write_video)
    videos_a = sorted(p.relative_to(a.parent) for p in a.parent.rglob("*.mp4"))
    assert videos_a and videos_a == sorted(p.relative_to(b.parent) for p in b.parent.rglob("*.mp4"))
    for rel in videos_a:
        assert (a.parent / rel).read_bytes() == (b.parent / rel).read_bytes(), rel
    for x, y in zip(decoded(a), decoded(b)):
        assert np.array_equal(x, y)
    frames_a = sorted(p.read_bytes() for p in (tiny_sets["frames"].parent).rglob("*.jpg"))
    assert frames_a  # JPEG frame folders are byte-identical to a second run
    again = generate(tiny_sets["frames"].parent.parent / "frames_again", **{**TINY, "as_frames": True})
    assert sorted(p.read_bytes() for p in again.parent.rglob("*.jpg")) == frames_a
    assert a.read_bytes() != c.read_bytes()
    assert not np.array_equal(decoded(a)[0][:5], decoded(c)[0][:5])


def test_digest_names_the_bytes_of_a_set(tiny_sets, tmp_path):
    a, b, c = (tiny_sets[k].parent for k in "abc")
    assert dataset_digest(a) == dataset_digest(b) == dataset_digest(a / "annotations.csv")  # scheduling: same bytes
    assert dataset_digest(c) != dataset_digest(a)
    copy = tmp_path / "copy"
    shutil.copytree(a, copy)
    (copy / "DONE").unlink()  # the marker is not data
    assert dataset_digest(copy) == dataset_digest(a)
    video = sorted(copy.rglob("*.mp4"))[-1]
    data = bytearray(video.read_bytes())
    data[len(data) // 2] ^= 1  # one bit of one clip
    video.write_bytes(bytes(data))
    assert dataset_digest(copy) != dataset_digest(a)
    video.rename(video.with_name("renamed.mp4"))  # the same bytes under another name: other data
    video.with_name("renamed.mp4").write_bytes((a / video.relative_to(copy)).read_bytes())
    assert dataset_digest(copy) != dataset_digest(a)


def test_read_annotations_reads_videos_and_frame_folders(tiny_sets):
    videos = read_annotations(tiny_sets["a"], format="dfme")
    folders = read_annotations(tiny_sets["frames"], format="dfme")
    assert len(videos) == len(folders) == 6
    for v, f in zip(videos, folders):
        assert 0 <= v.onset <= v.apex <= v.offset < v.n_frames and not v.apex_estimated
        assert v.fps == 200 and v.emotion in CLASS_ORDER and v.aus == parse_aus(v.au_string)
        assert len(open_video(v.path, "pyav")) == v.n_frames
        # the folder is annotated by file number (img1.jpg = position 0) and read back as positions
        assert list_frame_files(f.path)[0] == (1, "img1.jpg") and f.first_frame == 1
        assert (f.onset, f.apex, f.offset, f.n_frames, f.emotion) == (v.onset, v.apex, v.offset, v.n_frames, v.emotion)
    raw = (tiny_sets["frames"].parent / "annotations.csv").read_text().splitlines()[1].split(",")
    assert int(raw[3]) == folders[0].onset + 1


def test_meta_records_settings_and_counts(tiny_sets):
    import json

    meta = json.loads((tiny_sets["a"].parent / "meta.json").read_text())
    assert meta["settings"]["size"] == 64 and "workers" not in meta["settings"]
    records = read_annotations(tiny_sets["a"], format="dfme")
    assert meta["label_counts"] == {c: sum(r.emotion == c for r in records) for c in meta["label_counts"]}
    assert (tiny_sets["a"].parent / "DONE").is_file()


def test_label_noise_changes_labels_not_videos():
    settings = SyntheticSettings(**{**TINY, **STILL})
    clean_frames, clean = render_clip(ClipTask(0, 0, "fear", settings))
    noisy_frames, noisy = render_clip(ClipTask(0, 0, "fear", replace(settings, label_noise=1.0)))
    assert clean["emotion"] == "fear" and noisy["emotion"] != "fear" and noisy["true_emotion"] == "fear"
    assert np.array_equal(clean_frames, noisy_frames)


# ---- the cache -------------------------------------------------------------------------------


def test_cache_reuses_a_finished_set_and_redoes_an_unfinished_one(tmp_path, monkeypatch):
    calls = []
    real = generate_module.generate
    monkeypatch.setattr(generate_module, "generate", lambda *a, **k: calls.append(1) or real(*a, **k))
    small = {**TINY, "n_subjects": 1, "clips_per_subject": 2}
    first = ensure_dataset(tmp_path, **small)
    assert first.is_file() and (first.parent / "DONE").is_file() and len(calls) == 1
    assert ensure_dataset(tmp_path, **small) == first and len(calls) == 1  # reused
    assert ensure_dataset(tmp_path, **{**small, "workers": 2}) == first and len(calls) == 1  # workers do not change the data
    (first.parent / "DONE").unlink()  # as if the generating process died before finishing
    (first.parent / "half-written.tmp").write_text("")
    again = ensure_dataset(tmp_path, **small)
    assert again == first and len(calls) == 2
    assert (again.parent / "DONE").is_file() and not (again.parent / "half-written.tmp").exists()
    assert ensure_dataset(tmp_path, **{**small, "seed": 3}) != first  # other settings, other folder


def test_cache_generates_once_for_concurrent_callers(tmp_path, monkeypatch):
    calls = []
    real = generate_module.generate
    monkeypatch.setattr(generate_module, "generate", lambda *a, **k: calls.append(1) or real(*a, **k))
    small = {**TINY, "n_subjects": 1, "clips_per_subject": 2, "seed": 5}
    results = []
    threads = [threading.Thread(target=lambda: results.append(ensure_dataset(tmp_path, **small))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and len(set(results)) == 1 and len(calls) == 1
    leftovers = [p.name for p in (tmp_path / "synthetic").iterdir() if p.name.startswith(".")]
    assert leftovers == []


# ---- the command line -------------------------------------------------------------------------


def test_cli_writes_a_set_and_names_unknown_options(tmp_path, capsys):
    assert (
        main(
            [
                f"out_dir={tmp_path / 'cli'}",
                "n_subjects=1",
                "clips_per_subject=1",
                "size=48",
                "clip_seconds=0.1",
                "max_ms=40",
                "workers=1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "1 clips" in out and (tmp_path / "cli" / "annotations.csv").is_file()
    assert f"sha256 of the set: {dataset_digest(tmp_path / 'cli')}" in out
    assert main([f"out_dir={tmp_path}", "n_subject=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown option 'n_subject'" in err and "n_subjects" in err and "\n" not in err
    assert main([f"out_dir={tmp_path}", "n_subjects=many"]) == 2
    proc = subprocess.run(
        [sys.executable, "-m", "mer.data.synthetic", "out_dir=/nonexistent", "colour=1"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "unknown option 'colour'" in proc.stderr


def test_settings_are_typed_and_an_optional_one_may_stay_unset():
    from mer.data.synthetic import make_settings

    settings = make_settings(n_subjects=3.0, amplitude=2, workers=None)
    assert settings.n_subjects == 3 and isinstance(settings.amplitude, float) and settings.workers is None
    assert make_settings(workers=2).workers == 2
    with pytest.raises(ValueError, match=r"synthetic data option n_subjects=2.5: expected int"):
        make_settings(n_subjects=2.5)
    with pytest.raises(ValueError, match="unknown synthetic data option 'amplitud'; valid: n_subjects, "):
        make_settings(amplitud=1.0)
