"""CASME II: ``CASME2-coding-*.xlsx`` and frame folders ``<root>/sub01/EP02_01f/img46.jpg``.

Columns used, found by name on whichever of the first rows holds them: Subject, Filename,
OnsetFrame, ApexFrame, OffsetFrame, Action Units, Estimated Emotion, and Objective Class when the
file has it (kept in ``extra``). The releases spell them differently: the 2014 and 2019 coding
files (``OnsetFrame``), ``Onset Frame``, ``Emotion``; subjects come as 1, ``01`` or ``sub01``.
Frame cells are the numbers in the image names (img46.jpg is frame 46). Recorded at 200 fps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mer.data.formats import RawRow, cells_present, read_sheet, register_format, subject_name

COLUMNS = {
    "subject": ("Subject", "Sub"),
    "filename": ("Filename", "File name", "Clip"),
    "onset": ("OnsetFrame", "Onset"),
    "apex": ("ApexFrame", "Apex"),
    "offset": ("OffsetFrame", "Offset"),
    "aus": ("Action Units", "AU", "AUs"),
    "emotion": ("Estimated Emotion", "Emotion"),
    "objective": ("Objective Class", "Objective Classes"),
}


@register_format("casme2", label_map="casme2_5")
def read_casme2(path: Path, root: Path, fps: float | None = None) -> Iterator[RawRow]:
    sheet = read_sheet(path, COLUMNS, optional=("objective",))
    for row, cell in sheet:
        subject = subject_name(str(cell["subject"]).strip().lower().removeprefix("sub"), width=2, prefix="sub")
        filename = str(cell["filename"]).strip()
        yield RawRow.from_cells(
            row,
            cell,
            sheet=sheet.name,
            subject=subject,
            clip_id=f"{subject}/{filename}",
            base=root / subject / filename,
            fps=fps or 200.0,
            numbering="file",
            extra=cells_present(cell, ("objective",)),
        )
