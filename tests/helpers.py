"""Test media: videos whose frames carry their own index, tiny frame folders, annotation files."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
from openpyxl import Workbook

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


def write_workbook(path: Path, sheets: dict[str, list[list]]) -> Path:
    """An .xlsx of the given sheets, each a list of rows as a spreadsheet shows them (None: an empty cell).

    Rows are written from spreadsheet row 1, so preambles, headers and headerless sheets are
    written as they are: ``[["title"], [], ["Subject", "Onset"], [6, 5562]]``.
    """
    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row, start=1):
                if value is not None:
                    sheet.cell(row=r, column=c, value=value)
    book.save(path)
    return path


# the columns of CASME2-coding-20140508.xlsx, in order (two of them without a name)
CASME2_HEADER = [
    "Subject",
    "Filename",
    "Unnamed: 2",
    "OnsetFrame",
    "ApexFrame",
    "OffsetFrame",
    "Unnamed: 6",
    "Action Units",
    "Estimated Emotion",
]
# the rows above the header of SAMM_Micro_FACS_Codes_v2.xlsx: its header is on row 13
SAMM_PREAMBLE = [["SAMM micro-movements: FACS codes"], [], ["Coded by three coders"]] + [[]] * 8 + [["Subject details"]]
# the columns of SAMM_Micro_FACS_Codes_v2.xlsx, in order
SAMM_HEADER = [
    "Subject",
    "Filename",
    "Inducement Code",
    "Onset Frame",
    "Apex Frame",
    "Offset Frame",
    "Duration",
    "Micro",
    "Action Units",
    "Notes",
    "Estimated Emotion",
    "Objective Classes",
]


def casme2_folders(root: Path) -> Path:
    """CASME II frame folders (a few frames each, numbered as the data set numbers them) under ``root``."""
    index_folder(root / "sub01" / "EP02_01f", range(46, 87))
    index_folder(root / "sub01" / "EP03_02", range(1, 31))
    index_folder(root / "sub02" / "EP02_01f", range(100, 121))
    return root


def write_casme_sq(tmp_path: Path, rows: list[list]) -> tuple[Path, Path]:
    """A CAS(ME)^2 code file of these expression ``rows`` (headerless, as it ships) with its two
    naming sheets, and the frames of two long videos: (the file, the data set's root)."""
    root = tmp_path / "CAS(ME)^2"
    index_folder(root / "rawpic" / "s15" / "15_0101disgustingteeth", range(1, 41))
    index_folder(root / "rawpic" / "s16" / "16_0401girlcrashing", range(1, 31))
    sheets = {
        "Sheet1": rows,
        "naming rule1": [[None, "s15", 1], [None, "s16", 2]],
        "naming rule2": [["0101", "disgust1"], [401, "anger1"]],  # codes as text or as numbers
    }
    return write_workbook(tmp_path / "CAS(ME)^2code_final.xlsx", sheets), root


# SAMM long videos: the header of SAMM_LongVideos_V1_Release.xlsx, after its preamble (the header is row 10)
SAMM_LV_PREAMBLE = [["SAMM Long Videos"], ["Release 1"], []] + [[f"note {i}"] for i in range(6)]
SAMM_LV_HEADER = [
    "Subject",
    "Filename",
    "Inducement Code",
    "Onset",
    "Apex",
    "Offset",
    "Duration",
    "Type",
    "Action Units",
    "Notes",
]


def samm_lv_folders(root: Path) -> Path:
    """The frames of two SAMM long videos under ``root/SAMM_longvideos``: 006_1 (images 1..40), 007_3 (1..30)."""
    index_folder(root / "SAMM_longvideos" / "006_1", range(1, 41), pattern="006_1_{:04d}.jpg")
    index_folder(root / "SAMM_longvideos" / "007_3", range(1, 31), pattern="007_3_{:04d}.jpg")
    return root


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
