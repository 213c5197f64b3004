"""Test media: videos whose frames carry their own index, tiny frame folders, annotation files."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np

from mer.data.video import write_frame_folder, write_video

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def load_tool(name: str) -> ModuleType:
    """A script of tools/ (not a package) imported as a module, to test its functions."""
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BLOCK = 16  # a 4x4 grid of 16-px blocks: 16 bits, black or white, survives H.264 at any quality


def index_frame(i: int, size: int = 64) -> np.ndarray:
    """An RGB frame whose 4x4 block pattern spells ``i`` in binary."""
    img = np.zeros((size, size, 3), np.uint8)
    for bit in range(16):
        if (i >> bit) & 1:
            r, c = divmod(bit, 4)
            img[r * BLOCK : (r + 1) * BLOCK, c * BLOCK : (c + 1) * BLOCK] = 255
    return img


def read_index(img: np.ndarray) -> int:
    value = 0
    for bit in range(16):
        r, c = divmod(bit, 4)
        if img[r * BLOCK + 4 : (r + 1) * BLOCK - 4, c * BLOCK + 4 : (c + 1) * BLOCK - 4].mean() > 127:
            value |= 1 << bit
    return value


def index_video(path: Path, n: int, fps: float = 200, **kw) -> Path:
    return write_video(path, [index_frame(i) for i in range(n)], fps, crf=kw.pop("crf", 10), **kw)


def index_folder(folder: Path, numbers, pattern: str = "img{}.jpg") -> Path:
    """A frame folder whose image numbered k shows k."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in numbers:
        write_frame_folder(folder, [index_frame(k)], pattern=pattern, start=k)
    return folder


def face_in_frame(seed: int, n: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``n`` still frames (n, 256, 320, 3) of a synthetic face (128 px) and its eye centres (2, 2), image left first."""
    from mer.data.synthetic import Canvas, Nuisance, iter_video, render_face, sample_identity

    rng = np.random.default_rng(seed)
    layers = render_face(sample_identity(rng), 128)
    canvas = Canvas(320, 256, 96, 64)
    frames = np.stack(list(iter_video(layers, [], n, 30.0, nuisance=Nuisance.none(), canvas=canvas, rng=rng)))
    eyes = np.array([layers.landmarks["eye_center_R"], layers.landmarks["eye_center_L"]]) + [canvas.x, canvas.y]
    return frames, eyes


def turned(frames: np.ndarray, points: np.ndarray, angle: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Frames (..., H, W, 3) turned by ``angle`` degrees (counter-clockwise as shown) and scaled about
    their centre, and ``points`` (N, 2) with them."""
    import cv2

    h, w = frames.shape[-3:-1]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    turn = lambda f: cv2.warpAffine(f, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
    out = turn(frames) if frames.ndim == 3 else np.stack([turn(f) for f in frames])
    return out, points @ matrix[:, :2].T + matrix[:, 2]
