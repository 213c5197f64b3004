"""SAMM long videos: ``SAMM_LongVideos_V1_Release.xlsx`` / ``V2`` and the frames
``<root>/SAMM_longvideos/006_1/006_1_0001.jpg``.

The header follows preamble rows (on row 10 of the V1 and V2 sheet ``FACS_Movement_Only``); it
is found by name. Columns used: Subject, Filename (``006_1_1``: expression 1 of video ``006_1``),
Onset, Apex, Offset, Type (``Micro - 1/2``, ``Macro``), Action Units; Inducement Code and Notes
are kept in ``extra``. The releases code no emotion: the emotion is ``unknown`` (an "Estimated
Emotion" or "Emotion" column is read when a file has one), which no recognition label map assigns:
the format's own map is ``all`` (one class, every emotion).

Each row is an interval of a long video, read as an ``event_span`` clip of it with
``extra["video"]`` (``006_1``) and ``extra["type"]`` (micro / macro) for spotting. Frame cells are
image numbers from 1, so 0 means "not coded": a 0 onset or offset is the apex, as the spotting
baselines read it; an apex of -1 or 0 falls back to the midpoint. 200 fps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mer.data.formats import RawRow, cells_present, read_sheet, register_format, subject_name

COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename",),
    "onset": ("Onset", "Onset Frame"),
    "apex": ("Apex", "Apex Frame"),
    "offset": ("Offset", "Offset Frame"),
    "type": ("Type",),
    "aus": ("Action Units", "AU"),
    "emotion": ("Estimated Emotion", "Emotion"),
    "inducement": ("Inducement Code",),
    "notes": ("Notes",),
}
OPTIONAL = ("aus", "emotion", "inducement", "notes")


@register_format("samm_lv", label_map="all")
def read_samm_lv(path: Path, root: Path, fps: float | None = None) -> Iterator[RawRow]:
    sheet = read_sheet(path, COLUMNS, optional=OPTIONAL)
    videos = root / "SAMM_longvideos" if (root / "SAMM_longvideos").is_dir() else root
    for row, cell in sheet:
        filename = str(cell["filename"]).strip()
        video = "_".join(filename.split("_")[:2])
        base = videos / video
        yield RawRow.from_cells(
            row,
            cell | {"emotion": cells_present(cell, ("emotion",)).get("emotion", "unknown")},
            sheet=sheet.name,
            subject=subject_name(cell["subject"], width=3),
            clip_id=filename,
            media=base if base.is_dir() else None,  # frame folders only: the frame cells are image numbers
            looked_for=str(base),
            fps=fps or 200.0,
            numbering="file",
            event_span=True,
            expression_type=cell["type"],
            zero_uncoded=True,
            extra={"video": video} | cells_present(cell, ("inducement", "notes")),
        )
