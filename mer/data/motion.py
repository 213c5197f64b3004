"""Motion front end: optical flow from a reference frame, head-motion removal, optical strain, a flow cache.

    flow = compute_flow(onset, apex, method="dis")          # float32 (H, W, 2), pixels
    flow, head = remove_head_motion(flow, mode="affine")      # head: 2x3 matrix of the removed motion
    strain = optical_strain(flow)                             # float32 (H, W), unitless
    flows = clip_flows(frames, reference=0)                   # float32 (T, H, W, 2), one call per clip

A micro-expression is a motion of a fraction of a pixel to a few pixels between the onset (or a
neutral frame) and the apex, often smaller than the head's own drift in the same interval, so the
flow is always taken from one reference frame and the head's global motion is fitted and removed.

Convention, the same for every method: ``flow[y, x] = (u, v)`` is the displacement in pixels of the
content at (x, y) in the reference to its place in the other frame; u to the right, v down.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
from skimage.registration import optical_flow_tvl1

from mer.registry import Registry

# A flow function takes two uint8 grey images (H, W) and returns float32 (H, W, 2) in our convention.
FlowFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

FLOWS: Registry[Callable[..., FlowFn]] = Registry("optical flow method")

HEAD_MOTION_MODES = ("none", "similarity", "affine")


def _check_head_motion(mode: str) -> None:
    if mode not in HEAD_MOTION_MODES:
        raise ValueError(f"head motion mode {mode!r} is unknown; valid choices: {', '.join(HEAD_MOTION_MODES)}")


# --------------------------------------------------------------------------------------------- flow


def _grey(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W) or RGB (H, W, 3) -> contiguous uint8 (H, W)."""
    image = np.ascontiguousarray(image)  # DIS asserts contiguous input; a crop is a strided view
    if image.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if image.ndim != 2:
        raise ValueError(f"a frame must be grey (H, W) or RGB (H, W, 3), got shape {image.shape}")
    return image


DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
# option -> (setter of cv2.DISOpticalFlow, type); None keeps the preset's value
_DIS_SETTERS = {
    "finest_scale": ("setFinestScale", int),
    "patch_size": ("setPatchSize", int),
    "patch_stride": ("setPatchStride", int),
    "gradient_descent_iterations": ("setGradientDescentIterations", int),
    "variational_refinement_iterations": ("setVariationalRefinementIterations", int),
    "variational_refinement_alpha": ("setVariationalRefinementAlpha", float),
    "variational_refinement_delta": ("setVariationalRefinementDelta", float),
    "variational_refinement_gamma": ("setVariationalRefinementGamma", float),
}
# A DIS object holds buffers sized for the last image and is not safe to share between threads:
# one per thread and option set. DataLoader workers are processes, so each worker builds its own.
_dis_engines = threading.local()


def _dis_engine(preset: str, overrides: tuple[tuple[str, int | float], ...]) -> cv2.DISOpticalFlow:
    engines = _dis_engines.__dict__.setdefault("by_options", {})
    key = (preset, overrides)
    if key not in engines:
        engine = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
        for name, value in overrides:
            setter, kind = _DIS_SETTERS[name]
            getattr(engine, setter)(kind(value))
        engines[key] = engine
    return engines[key]


@FLOWS.register("dis")
def dis(
    *,
    preset: str = "medium",
    finest_scale: int | None = None,
    patch_size: int | None = None,
    patch_stride: int | None = None,
    gradient_descent_iterations: int | None = None,
    variational_refinement_iterations: int | None = None,
    variational_refinement_alpha: float | None = None,
    variational_refinement_delta: float | None = None,
    variational_refinement_gamma: float | None = None,
) -> FlowFn:
    """OpenCV's Dense Inverse Search (Kroeger et al. 2016): fast, the default. Options left ``None``
    keep the preset's values (medium: finest_scale 1, patch 8, stride 3, 25 descent and 5 refinement
    iterations, alpha 20, delta 5, gamma 10)."""
    if preset not in DIS_PRESETS:
        raise ValueError(f"dis preset {preset!r} is unknown; valid choices: {', '.join(DIS_PRESETS)}")
    given = {
        "finest_scale": finest_scale,
        "patch_size": patch_size,
        "patch_stride": patch_stride,
        "gradient_descent_iterations": gradient_descent_iterations,
        "variational_refinement_iterations": variational_refinement_iterations,
        "variational_refinement_alpha": variational_refinement_alpha,
        "variational_refinement_delta": variational_refinement_delta,
        "variational_refinement_gamma": variational_refinement_gamma,
    }
    overrides = tuple((name, value) for name, value in given.items() if value is not None)

    def flow(reference: np.ndarray, frame: np.ndarray) -> np.ndarray:
        return _dis_engine(preset, overrides).calc(reference, frame, None)

    return flow


@FLOWS.register("farneback")
def farneback(
    *,
    pyr_scale: float = 0.5,
    levels: int = 3,
    winsize: int = 15,
    iterations: int = 3,
    poly_n: int = 5,
    poly_sigma: float = 1.2,
) -> FlowFn:
    """OpenCV's Farneback polynomial-expansion flow, with the defaults of OpenCV's own examples."""

    def flow(reference: np.ndarray, frame: np.ndarray) -> np.ndarray:
        return cv2.calcOpticalFlowFarneback(
            reference, frame, None, pyr_scale, int(levels), int(winsize), int(iterations), int(poly_n), poly_sigma, 0
        )

    return flow


@FLOWS.register("tvl1")
def tvl1(
    *,
    attachment: float = 15.0,
    tightness: float = 0.3,
    num_warp: int = 5,
    num_iter: int = 10,
    tol: float = 1e-4,
    prefilter: bool = False,
) -> FlowFn:
    """scikit-image's TV-L1 (Zach et al. 2007), the method of the ME papers; slow. Defaults are
    scikit-image's; docs/motion.md relates them to OpenCV's DualTVL1 (``attachment`` = 255 x lambda)."""

    def flow(reference: np.ndarray, frame: np.ndarray) -> np.ndarray:
        # skimage warps `frame` at x + flow(x) to match `reference` at x: our sign already. Its axes
        # are the array's, (rows, cols) = (v, u), and uint8 images are scaled to [0, 1].
        v, u = optical_flow_tvl1(
            reference,
            frame,
            attachment=attachment,
            tightness=tightness,
            num_warp=int(num_warp),
            num_iter=int(num_iter),
            tol=tol,
            prefilter=bool(prefilter),
            dtype=np.float32,
        )
        return np.stack([u, v], axis=-1)  # (2, H, W) as (v, u) -> (H, W, 2) as (u, v)

    return flow


def list_flows() -> list[str]:
    return FLOWS.names()


def _flow_fn(method: str, options: dict) -> FlowFn:
    """The flow function of ``method`` with ``options``; a wrong name or option is a one-line ValueError."""
    builder = FLOWS.get(method)  # an unknown method lists the valid ones
    valid = list(inspect.signature(builder).parameters)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"flow method {method!r} has no option {', '.join(unknown)}; valid options: {', '.join(valid)}")
    return FLOWS.build(method, **options)


def compute_flow(reference: np.ndarray, frame: np.ndarray, method: str = "dis", **options) -> np.ndarray:
    """Dense optical flow from ``reference`` to ``frame``: float32 (H, W, 2) in pixels, (u, v).

    Both images uint8, grey (H, W) or RGB (H, W, 3), of one size. ``flow[y, x]`` is where the content
    at (x, y) of ``reference`` moved to in ``frame``, minus (x, y): u right, v down. ``options`` go to
    the method's builder (see ``list_flows()`` and docs/motion.md); ``None`` keeps its default.
    """
    reference, frame = _grey(reference), _grey(frame)
    if reference.shape != frame.shape:
        raise ValueError(f"reference {reference.shape} and frame {frame.shape} differ in size")
    return _flow_fn(method, options)(reference, frame)


# ------------------------------------------------------------------------------------------ strain


def optical_strain(flow: np.ndarray) -> np.ndarray:
    """Magnitude of the infinitesimal strain tensor of a flow (H, W, 2) -> float32 (H, W), unitless.

    ``sqrt(exx^2 + eyy^2 + 2 exy^2)`` with exx = du/dx, eyy = dv/dy, exy = (du/dy + dv/dx) / 2, by
    central differences (one-sided at the border), as in Bi-WOOF and STSTNet. It measures how the skin
    stretches and shears; translation and (small) rotation give zero.
    """
    flow = np.asarray(flow, dtype=np.float32)
    du_dy, du_dx = np.gradient(flow[..., 0])  # axis 0 is y (rows), axis 1 is x (columns)
    dv_dy, dv_dx = np.gradient(flow[..., 1])
    exy = 0.5 * (du_dy + dv_dx)
    return np.sqrt(du_dx**2 + dv_dy**2 + 2.0 * exy**2).astype(np.float32)


# ------------------------------------------------------------------------------------- head motion

_INLIER_CUT = 2.5  # x the median residual: a robust cut for a noise floor of any size
_MIN_CUT = 1e-3  # px: below this a residual is float noise of an exact fit, never an outlier
_REFITS = 3


def _design(mode: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Rows of the linear model of the displacement at points (x, y): (N, 2, k) for (u, v)."""
    one, zero = np.ones_like(x), np.zeros_like(x)
    if mode == "affine":  # u = a x + b y + c, v = d x + e y + f
        return np.stack([np.stack([x, y, one, zero, zero, zero], -1), np.stack([zero, zero, zero, x, y, one], -1)], 1)
    # similarity: u = a x - b y + tx, v = b x + a y + ty, with a = s cos(r) - 1, b = s sin(r)
    return np.stack([np.stack([x, -y, one, zero], -1), np.stack([y, x, zero, one], -1)], 1)


def _displacement_matrix(mode: str, p: np.ndarray) -> np.ndarray:
    """Fitted parameters -> 2x3 D with displacement = D @ (x, y, 1)."""
    if mode == "affine":
        return p.reshape(2, 3)
    a, b, tx, ty = p
    return np.array([[a, -b, tx], [b, a, ty]])


def remove_head_motion(flow: np.ndarray, mode: str = "affine") -> tuple[np.ndarray, np.ndarray]:
    """Fit the head's global motion to a flow (H, W, 2) and subtract it.

    Returns (float32 (H, W, 2) residual flow, float64 2x3 matrix ``M`` of the head motion, mapping a
    reference point (x, y, 1) to its place in the frame; identity for ``mode="none"``).

    ``mode``: "none"; "similarity" (rotation, uniform scale, translation: 4 dof); "affine" (6 dof,
    also shear and anisotropic scale, e.g. a head turning a little about a vertical axis).
    The fit is least squares on a grid of points, re-fitted up to 3 times on the points whose residual
    is within 2.5x the median residual, so a local motion (an expression, a blink) covering a minority
    of the face does not pull the model. Nothing is masked by hand.
    """
    _check_head_motion(mode)
    flow = np.asarray(flow, dtype=np.float32)
    if mode == "none":
        return flow, np.eye(2, 3)
    h, w = flow.shape[:2]
    # centred coordinates scaled to [-1, 1]: the normal equations below are then well conditioned
    centre, scale = np.array([(w - 1) / 2.0, (h - 1) / 2.0]), max(h, w) / 2.0
    step = max(1, min(h, w) // 56)  # about 3000 points at any size: plenty for 6 parameters, cheap
    ys, xs = np.mgrid[0:h:step, 0:w:step]
    x, y = (xs.ravel() - centre[0]) / scale, (ys.ravel() - centre[1]) / scale
    d = flow[ys, xs].reshape(-1, 2).astype(np.float64)  # (N, 2)
    rows = _design(mode, x, y)  # (N, 2, k)
    k = rows.shape[-1]
    keep = np.ones(len(d), dtype=bool)
    for _ in range(_REFITS + 1):
        a, b = rows[keep].reshape(-1, k), d[keep].ravel()
        # normal equations of a k x k system: np.linalg.lstsq (SVD) is 20x slower here and stalls
        # in multithreaded BLAS when the cores are busy
        params = np.linalg.solve(a.T @ a, a.T @ b)
        residual = np.linalg.norm(d - rows @ params, axis=1)
        inliers = residual <= max(_INLIER_CUT * np.median(residual), _MIN_CUT)
        if np.array_equal(inliers, keep) or inliers.sum() < k:
            break
        keep = inliers
    disp = _displacement_matrix(mode, params)
    disp[:, :2] /= scale  # back to pixel coordinates
    disp[:, 2] -= disp[:, :2] @ centre
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    head = np.stack([xx, yy, np.ones_like(xx)], -1) @ disp.T  # (H, W, 3) @ (3, 2) -> (H, W, 2)
    return (flow - head).astype(np.float32), disp + np.eye(2, 3)


# ------------------------------------------------------------------------------------------- clips


def clip_flows(
    frames: np.ndarray,
    *,
    reference: int = 0,
    method: str = "dis",
    head_motion: str = "affine",
    options: dict | None = None,
) -> np.ndarray:
    """The flow of every frame of a clip from frame ``reference``, head motion removed.

    frames uint8 (T, H, W, 3) -> float32 (T, H, W, 2) in pixels; the reference's own flow is zeros.
    ``options`` are the flow method's (see ``compute_flow``).
    """
    frames = np.asarray(frames)
    if frames.ndim not in (3, 4):
        raise ValueError(f"frames must be (T, H, W, 3) or (T, H, W), got shape {frames.shape}")
    n = len(frames)
    if not -n <= reference < n:
        raise ValueError(f"reference {reference} is outside the clip's {n} frames")
    _check_head_motion(head_motion)  # fail before computing any flow
    flow_fn = _flow_fn(method, options or {})
    grey = [_grey(frame) for frame in frames]
    reference %= n
    flows = np.zeros((n, *grey[0].shape, 2), dtype=np.float32)  # (T, H, W, 2)
    for t, frame in enumerate(grey):
        if t != reference:
            flows[t] = remove_head_motion(flow_fn(grey[reference], frame), head_motion)[0]
    return flows


# ------------------------------------------------------------------------------------------- cache


def video_digest(path: str | os.PathLike) -> str:
    """A cheap identity of a video file or frame folder: sha256 of its path, sizes and mtimes.

    A file: (path, size, mtime_ns). A folder: its path and the sorted (name, size, mtime_ns) of its
    files. Rewriting or touching the media changes the digest; no byte is hashed.
    """
    path = Path(path).resolve()
    if path.is_dir():
        stats = ((e.name, e.stat()) for e in os.scandir(path) if e.is_file())
        identity = [str(path), sorted((name, st.st_size, st.st_mtime_ns) for name, st in stats)]
    else:
        st = path.stat()
        identity = [str(path), st.st_size, st.st_mtime_ns]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()


def _plain(value):
    """numpy scalars and paths in settings -> JSON values (so np.int64(3) and 3 give one key)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot put {type(value).__name__} {value!r} in a flow cache key")


class FlowCache:
    """Clip flows on disk, one float16 ``<key>.npy`` per clip, shared by processes and workers.

    float16 keeps 11 significant bits: the round-trip error is at most |flow| x 2^-11, under 0.001 px
    below 2 px and under 0.004 px up to 16 px, far below any flow method's own error.
    Writes go to a temporary file in the same folder, renamed into place (atomic on one file
    system), so a reader sees a whole file or none; a file that does not load (a crash mid-copy, a
    full disk) is a miss and is removed.

        cache = FlowCache("~/.cache/mer/flows")
        key = cache.key(video_digest(record.path), indices, {"method": "dis", "head_motion": "affine"})
        flows = cache.get(key)
        if flows is None:
            flows = clip_flows(frames, method="dis", head_motion="affine")
            cache.put(key, flows)
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(video_digest: str, indices: Sequence[int], settings: dict) -> str:
        """sha256 of the canonical JSON (sorted keys) of the video's digest, the frame indices and the
        settings that shaped the flow (method, options, head motion, reference, size...)."""
        identity = {"video": video_digest, "indices": [int(i) for i in indices], "settings": settings}
        text = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=_plain)
        return hashlib.sha256(text.encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        """The stored array as float32, or None (absent, or unreadable: then it is removed)."""
        path = self.path(key)
        try:
            return np.load(path, allow_pickle=False).astype(np.float32)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError):  # truncated or garbage
            with contextlib.suppress(OSError):
                path.unlink()
            return None

    def put(self, key: str, array: np.ndarray) -> None:
        """Store ``array`` as float16; concurrent writers of one key each rename a whole file into place."""
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, np.asarray(array, dtype=np.float16))
            os.replace(tmp, self.path(key))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
