"""CAS(ME)^2 (CASME_sq): ``CAS(ME)^2code_final.xlsx`` and the long videos' frames
``<root>/rawpic/s15/15_0101disgustingteeth/img1.jpg``.

The first sheet has no header row; its columns are: participant number, video name and
expression number (``disgust1_1``), onset, apex, offset, AUs, estimated emotion, expression type
(``micro-expression`` / ``macro-expression``), self-reported emotion. The second sheet maps a
participant number to a subject code (column 3 -> column 2: 1 -> ``s15``), the third a video name
to a video code (column 2 -> column 1: ``disgust1`` -> ``0101``). The frames of ``disgust1`` of
participant 1 are the folder of ``rawpic/s15/`` named ``<n>_0101<title>``.

Each row is an interval of a long video, read as an ``event_span`` clip of it (recognition trains
on onset..offset) with ``extra["video"]`` (``s15/15_0101disgustingteeth``) and ``extra["type"]``
(micro / macro) for spotting. Frame cells are image numbers from 1, so 0 means "not coded": a 0
apex falls back to the midpoint, a 0 offset is the apex (as the spotting baselines read it). The
emotions are coarse (negative, positive, surprise, others): the default map is megc3. 30 fps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from mer.data.formats import RawRow, cells_present, read_sheets, register_format
from mer.data.records import AnnotationError

COLUMNS = ("participant", "video", "onset", "apex", "offset", "aus", "emotion", "type", "self_report")


def _whole(value: object) -> int | None:
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


def _naming(subjects: pd.DataFrame, videos: pd.DataFrame) -> tuple[dict[int, str], dict[str, str]]:
    """{participant number: subject code} and {video name: video code}; rows that are not pairs (titles) are passed over."""
    by_number = {}
    for _, cells in subjects.iterrows():
        number = _whole(cells.iloc[2]) if len(cells) > 2 else None
        code = _whole(str(cells.iloc[1]).strip().lower().removeprefix("s"))  # s15, 15 or 15.0
        if number is not None and code is not None:
            by_number[number] = f"s{code:02d}"
    by_name = {}
    for _, cells in videos.iterrows():
        code, name = _whole(cells.iloc[0]), str(cells.iloc[1]).strip().lower()
        if code is not None and name and name != "nan":
            by_name[name] = f"{code:04d}"
    return by_number, by_name


@register_format("casme_sq", label_map="megc3")
def read_casme_sq(path: Path, root: Path, fps: float | None = None) -> Iterator[RawRow]:
    sheets = read_sheets(path)
    names = list(sheets)
    if len(names) < 3:
        raise AnnotationError(f"{path}: expected the expressions sheet and two naming sheets (subjects, videos); sheets: {names}")
    by_number, by_name = _naming(sheets[names[1]], sheets[names[2]])
    rawpic = root / "rawpic" if (root / "rawpic").is_dir() else root
    folders: dict[Path, list[Path]] = {}  # each subject's video folders, listed once
    for index, series in sheets[names[0]].iterrows():
        cell = dict(zip(COLUMNS, list(series) + [None] * (len(COLUMNS) - len(series))))
        if all(pd.isna(v) for v in cell.values()):
            continue
        number, clip = _whole(cell["participant"]), str(cell["video"]).strip()
        subject, code = by_number.get(number), by_name.get(clip.split("_")[0].lower())
        media, looked_for = None, ""
        if subject is None:
            looked_for = f"participant {cell['participant']!r} is not in sheet {names[1]!r}"
        elif code is None:
            looked_for = f"video {clip.split('_')[0]!r} is not in sheet {names[2]!r}"
        else:
            subject_dir = rawpic / subject
            if subject_dir not in folders:
                folders[subject_dir] = sorted(p for p in subject_dir.iterdir() if p.is_dir()) if subject_dir.is_dir() else []
            media = next((p for p in folders[subject_dir] if p.name.partition("_")[2].startswith(code)), None)
            looked_for = f"{subject_dir}/<n>_{code}*"
        yield RawRow.from_cells(
            int(index) + 1,
            cell,
            sheet=names[0],
            subject=subject or str(cell["participant"]),
            clip_id=f"{subject}/{clip}",
            media=media,
            looked_for=looked_for,
            fps=fps or 30.0,
            numbering="file",
            event_span=True,
            expression_type=cell["type"],
            zero_uncoded=True,
            extra=({"video": f"{subject}/{media.name}"} if media is not None else {}) | cells_present(cell, ("self_report",)),
        )
