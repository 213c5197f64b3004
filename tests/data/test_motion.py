import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import cv2
import numpy as np
import pytest

from mer.data.motion import (
    FlowCache,
    _dis_engine,
    clip_flows,
    compute_flow,
    list_flows,
    optical_strain,
    remove_head_motion,
    video_digest,
)

H, W = 48, 64  # not square, so that a swapped x/y axis shows


def texture(size: int = 160, seed: int = 0) -> np.ndarray:
    """Smooth random texture, uint8: every pixel has gradient, like skin under a camera's noise."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (size, size)).astype(np.float32), (0, 0), 2.0)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def shifted_pair(dx: int, dy: int, h: int = H, w: int = W):
    """(reference, frame) where the content moved right by dx and down by dy."""
    big, y0, x0 = texture(), 20, 20
    reference = big[y0 : y0 + h, x0 : x0 + w]
    frame = big[y0 - dy : y0 - dy + h, x0 - dx : x0 - dx + w]  # frame[y, x] = reference[y - dy, x - dx]
    return reference, frame


def grid(h: int = H, w: int = W):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    return xx, yy


def field(u, v) -> np.ndarray:
    return np.stack([u, v], -1).astype(np.float32)


# ------------------------------------------------------------------------------------------- flow


@pytest.mark.parametrize("method", ["dis", "farneback", "tvl1"])
def test_every_method_follows_one_convention(method):
    reference, frame = shifted_pair(dx=2, dy=-1)
    flow = compute_flow(reference, frame, method=method)
    assert flow.dtype == np.float32 and flow.shape == (H, W, 2)
    inner = flow[8:-8, 8:-8].reshape(-1, 2)  # the borders see content entering the frame
    np.testing.assert_allclose(np.median(inner, axis=0), [2.0, -1.0], atol=0.1)


def test_rgb_is_converted_to_grey_inside():
    reference, frame = shifted_pair(dx=1, dy=1)
    reference_rgb, frame_rgb = (np.repeat(g[..., None], 3, axis=-1) for g in (reference, frame))
    np.testing.assert_allclose(compute_flow(reference_rgb, frame_rgb), compute_flow(reference, frame), atol=1e-6)


def test_options_reach_the_method_and_engines_are_reused():
    reference, frame = shifted_pair(dx=2, dy=0)
    coarse = compute_flow(reference, frame, "farneback", levels=1, winsize=5)
    assert not np.allclose(coarse, compute_flow(reference, frame, "farneback"))
    assert _dis_engine("fast", ()) is _dis_engine("fast", ())
    assert _dis_engine("fast", ()) is not _dis_engine("fast", (("patch_size", 12),))
    assert _dis_engine("fast", (("patch_size", 12),)).getPatchSize() == 12
    assert compute_flow(reference, frame, "dis", preset="fast", patch_size=None).shape == (H, W, 2)  # None: default


def test_wrong_names_are_one_line_errors_listing_the_choices():
    reference, frame = shifted_pair(dx=0, dy=0)
    assert list_flows() == ["dis", "farneback", "tvl1"]
    with pytest.raises(ValueError, match="unknown optical flow method 'raft'; valid choices: dis, farneback, tvl1"):
        compute_flow(reference, frame, method="raft")
    with pytest.raises(ValueError, match="no option lambda_; valid options: attachment, tightness"):
        compute_flow(reference, frame, method="tvl1", lambda_=0.15)
    with pytest.raises(ValueError, match="valid choices: ultrafast, fast, medium"):
        compute_flow(reference, frame, preset="slow")
    with pytest.raises(ValueError, match="uint8"):
        compute_flow(reference.astype(np.float32), frame)
    with pytest.raises(ValueError, match="differ in size"):
        compute_flow(reference, frame[:-1])


# ----------------------------------------------------------------------------------------- strain


def test_strain_of_analytic_fields():
    xx, yy = grid()
    zero = np.zeros_like(xx)
    a, k, w = 0.03, 0.05, 0.02
    assert np.abs(optical_strain(field(zero + 1.5, zero - 0.7))).max() < 1e-6  # translation
    np.testing.assert_allclose(optical_strain(field(a * xx, zero)), abs(a), rtol=1e-4)  # stretch along x
    np.testing.assert_allclose(optical_strain(field(zero, -a * yy)), abs(a), rtol=1e-4)  # compression along y
    np.testing.assert_allclose(optical_strain(field(a * xx, a * yy)), np.sqrt(2) * a, rtol=1e-4)  # dilation
    np.testing.assert_allclose(optical_strain(field(k * yy, zero)), k / np.sqrt(2), rtol=1e-4)  # simple shear
    assert optical_strain(field(zero, a * xx)).max() == pytest.approx(a / np.sqrt(2), rel=1e-4)  # the other shear
    assert np.abs(optical_strain(field(-w * yy, w * xx))).max() < 1e-6  # infinitesimal rotation
    theta = np.deg2rad(2.0)  # a finite rotation is rigid too: strain of order theta^2
    c, s, cx, cy = np.cos(theta), np.sin(theta), W / 2, H / 2
    u = (c - 1) * (xx - cx) - s * (yy - cy)
    v = s * (xx - cx) + (c - 1) * (yy - cy)
    assert np.hypot(u, v).max() > 1.0 and optical_strain(field(u, v)).max() < 1e-3


# ------------------------------------------------------------------------------------ head motion


def head_flow(matrix: np.ndarray, h: int = 112, w: int = 112) -> np.ndarray:
    """Displacement of a head moving by the 2x3 point mapping ``matrix``."""
    xx, yy = grid(h, w)
    mx = matrix[0, 0] * xx + matrix[0, 1] * yy + matrix[0, 2]
    my = matrix[1, 0] * xx + matrix[1, 1] * yy + matrix[1, 2]
    return field(mx - xx, my - yy)


def bump(h: int = 112, w: int = 112, peak: float = 1.5):
    """A local expression: Gaussian displacement (up and to the right) over a disc of 5% of the image.

    Returns (flow, disc mask); sigma = radius / 3, so the bump is 1% of its peak at the disc's edge."""
    xx, yy = grid(h, w)
    radius = np.sqrt(0.05 * h * w / np.pi)
    r2 = (xx - 0.3 * w) ** 2 + (yy - 0.35 * h) ** 2  # off centre, like a brow
    g = peak * np.exp(-r2 / (2 * (radius / 3) ** 2))
    return field(g / np.sqrt(2), -g / np.sqrt(2)), r2 <= radius**2


def rotation_scale(degrees: float, scale: float, tx: float, ty: float, centre=(55.5, 55.5)) -> np.ndarray:
    return cv2.getRotationMatrix2D(centre, degrees, scale) + np.array([[0, 0, tx], [0, 0, ty]])


HEAD_MOTIONS = {
    "affine": np.array([[1.012, 0.015, -1.2], [-0.008, 0.99, 1.7]]),  # shear and anisotropic scale too
    "similarity": rotation_scale(degrees=1.5, scale=1.02, tx=0.8, ty=-1.1),
}


@pytest.mark.parametrize("mode", ["affine", "similarity"])
def test_head_motion_is_removed_and_the_expression_kept(mode):
    head = HEAD_MOTIONS[mode]
    expression, inside = bump()
    flow = head_flow(head) + expression
    assert np.abs(flow[~inside]).max() > 1.0  # the head moves more than the expression
    residual, fitted = remove_head_motion(flow, mode)
    assert residual.dtype == np.float32 and residual.shape == flow.shape
    np.testing.assert_allclose(fitted, head, atol=1e-3)
    assert np.abs(residual[~inside]).max() < 0.05
    peak = np.linalg.norm(expression, axis=-1).max()
    assert np.linalg.norm(residual, axis=-1).max() == pytest.approx(peak, rel=0.1)


def test_a_plain_least_squares_fit_would_be_pulled_by_the_expression():
    """The test above is not trivially passed: without the robust re-fit the bump biases the head."""
    expression, inside = bump(peak=4.0)
    xx, yy = grid(112, 112)
    rows = np.stack([xx.ravel(), yy.ravel(), np.ones(xx.size)], 1)
    pulled = [np.linalg.lstsq(rows, expression[..., c].ravel(), rcond=None)[0] @ rows.T for c in (0, 1)]
    assert np.abs(np.stack(pulled, -1)[~inside.ravel()]).max() > 0.05
    residual, _ = remove_head_motion(expression, "affine")
    assert np.abs(residual[~inside]).max() < 0.05


def test_similarity_cannot_remove_shear_and_none_changes_nothing():
    shear = head_flow(np.array([[1.0, 0.03, 0.0], [0.0, 1.0, 0.0]]))
    assert np.abs(remove_head_motion(shear, "affine")[0]).max() < 1e-3
    assert np.abs(remove_head_motion(shear, "similarity")[0]).max() > 0.5
    flow = head_flow(HEAD_MOTIONS["affine"]) + bump()[0]
    same, matrix = remove_head_motion(flow, "none")
    np.testing.assert_array_equal(same, flow)
    np.testing.assert_array_equal(matrix, np.eye(2, 3))
    with pytest.raises(ValueError, match="valid choices: none, similarity, affine"):
        remove_head_motion(flow, "projective")


# ------------------------------------------------------------------------------------------ clips


def drifting_clip(n: int = 4, h: int = H, w: int = W) -> np.ndarray:
    """RGB frames (n, h, w, 3) of a texture translating by (0.5 t, -0.25 t) px, bilinear warp."""
    big = texture()
    frames = []
    for t in range(n):
        # frame(p) = big(p + (20, 20) - d): the content moves by d = (0.5 t, -0.25 t)
        m = np.array([[1.0, 0.0, 20 - 0.5 * t], [0.0, 1.0, 20 + 0.25 * t]], dtype=np.float32)
        grey = cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        frames.append(np.repeat(grey[..., None], 3, axis=-1))
    return np.stack(frames)


def test_clip_flows_from_the_reference_with_and_without_head_motion():
    frames = drifting_clip()
    raw = clip_flows(frames, reference=1, head_motion="none", method="farneback")
    assert raw.shape == (4, H, W, 2) and raw.dtype == np.float32
    assert not raw[1].any()  # the reference's own flow
    for t in (0, 2, 3):
        expected = [0.5 * (t - 1), -0.25 * (t - 1)]
        np.testing.assert_allclose(np.median(raw[t, 8:-8, 8:-8].reshape(-1, 2), axis=0), expected, atol=0.1)
    steady = clip_flows(frames, reference=1, head_motion="similarity", method="farneback")
    assert np.abs(np.median(steady[:, 8:-8, 8:-8], axis=(1, 2))).max() < 0.02
    with pytest.raises(ValueError, match="outside the clip"):
        clip_flows(frames, reference=4)
    with pytest.raises(ValueError, match="head motion mode"):
        clip_flows(frames, head_motion="rigid")


# ------------------------------------------------------------------------------------------ cache


def test_cache_keys_are_canonical():
    key = FlowCache.key
    base = key("abc", [3, 7], {"method": "dis", "options": {"preset": "fast", "patch_size": 8}})
    assert len(base) == 64 and int(base, 16) >= 0
    reordered = {"options": {"patch_size": np.int32(8), "preset": "fast"}, "method": "dis"}
    assert base == key("abc", (np.int64(3), 7), reordered)
    assert base != key("abd", [3, 7], {"method": "dis", "options": {"preset": "fast", "patch_size": 8}})
    assert base != key("abc", [3, 8], {"method": "dis", "options": {"preset": "fast", "patch_size": 8}})
    assert base != key("abc", [3, 7], {"method": "dis", "options": {"preset": "medium", "patch_size": 8}})


def test_cache_round_trip_in_float16(tmp_path):
    cache = FlowCache(tmp_path / "flows")
    flows = np.random.default_rng(0).uniform(-16, 16, (3, 20, 24, 2)).astype(np.float32)
    assert cache.get("k") is None
    cache.put("k", flows)
    back = cache.get("k")
    assert back.dtype == np.float32 and back.shape == flows.shape
    error = np.abs(back - flows)
    assert 0 < error.max() < 0.01  # lossy, and within the documented bound
    assert (error <= np.abs(flows) * 2.0**-11 + 1e-7).all()
    assert sorted(p.name for p in cache.folder.iterdir()) == ["k.npy"]  # no temporary left behind


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage"])
def test_a_damaged_file_is_a_miss_and_is_removed(tmp_path, damage):
    cache = FlowCache(tmp_path)
    cache.put("k", np.ones((2, 8, 8, 2), np.float32))
    data = cache.path("k").read_bytes()
    damaged = {"truncated": data[: len(data) // 2], "empty": b"", "garbage": b"\x93NUMPY" + b"x" * 90}[damage]
    cache.path("k").write_bytes(damaged)
    assert cache.get("k") is None
    assert not cache.path("k").exists()
    cache.put("k", np.ones((2, 8, 8, 2), np.float32))
    assert cache.get("k") is not None


def _hammer(folder: str, seed: int) -> int:
    """One worker: rewrites the shared key and reads it back; returns how many reads missed or were wrong."""
    cache, expected = FlowCache(folder), np.full((4, 32, 32, 2), 1.5, np.float32)
    bad = 0
    for _ in range(40):
        cache.put("shared", expected)
        got = cache.get("shared")
        bad += got is None or not np.array_equal(got, expected)
    return bad


def test_concurrent_writers_and_readers_never_see_a_partial_file(tmp_path):
    FlowCache(tmp_path).put("shared", np.full((4, 32, 32, 2), 1.5, np.float32))
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("fork")) as pool:
        misses = list(pool.map(_hammer, [str(tmp_path)] * 3, range(3)))
    assert misses == [0, 0, 0]
    assert [p.name for p in tmp_path.iterdir()] == ["shared.npy"]


def test_video_digest_changes_with_the_media_not_its_bytes(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"a" * 100)
    os.utime(video, ns=(1_000_000_000, 1_000_000_000))
    first = video_digest(video)
    assert video_digest(video) == first and len(first) == 64
    video.write_bytes(b"b" * 100)  # same size, same mtime: deliberately not detected (no hashing)
    os.utime(video, ns=(1_000_000_000, 1_000_000_000))
    assert video_digest(video) == first
    os.utime(video, ns=(2_000_000_000, 2_000_000_000))
    assert video_digest(video) != first

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in (1, 2):
        (folder / f"img{i}.jpg").write_bytes(b"x" * i)
    before = video_digest(folder)
    assert video_digest(folder) == before
    (folder / "img3.jpg").write_bytes(b"x")
    assert video_digest(folder) != before
