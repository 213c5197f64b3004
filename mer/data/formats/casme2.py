"""CASME II: ``CASME2-coding-*.xlsx`` and frame folders ``<root>/sub01/EP02_01f/img46.jpg``.

Columns used: Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame, Action Units, Estimated
Emotion. Frame cells are the numbers in the image names (img46.jpg is frame 46). Recorded at 200 fps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mer.data.formats import RawRow, find_columns, read_table, register_format, rows, subject_name

COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename",),
    "onset": ("OnsetFrame", "Onset Frame"),
    "apex": ("ApexFrame", "Apex Frame"),
    "offset": ("OffsetFrame", "Offset Frame"),
    "aus": ("Action Units", "AU"),
    "emotion": ("Estimated Emotion", "Emotion"),
}


@register_format("casme2", label_map="casme2_5")
def read_casme2(path: Path, root: Path, fps: float | None = None) -> Iterator[RawRow]:
    table = read_table(path)
    columns = find_columns(table, path, COLUMNS)
    for row, cell in rows(table, columns):
        subject = subject_name(cell["subject"], width=2, prefix="sub")
        filename = str(cell["filename"]).strip()
        yield RawRow.from_cells(
            row,
            cell,
            subject=subject,
            clip_id=f"{subject}/{filename}",
            base=root / subject / filename,
            fps=fps or 200.0,
            numbering="file",
        )
