"""MMEW: ``MMEW_Micro_Exp.xlsx`` and frame folders ``<root>/<emotion>/S01-01-001/1.jpg``.

Columns used, found by name as CASME II's are: Subject, Filename, OnsetFrame, ApexFrame,
OffsetFrame, Action Units, Estimated Emotion (remarks, and Objective Class when the sheet has it,
kept in ``extra``). The clips are filed by emotion: a clip's folder is under the folder named
as its Estimated Emotion cell (as written, else in lower case). Frame cells are the numbers in the
image names. Recorded at 90 fps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mer.data.formats import RawRow, casme2, cells_present, find_media, read_sheet, register_format, subject_name

COLUMNS = casme2.COLUMNS | {"remarks": ("remarks",)}  # CASME II's sheet, plus remarks


@register_format("mmew", label_map="mmew7")
def read_mmew(path: Path, root: Path, fps: float | None = None) -> Iterator[RawRow]:
    sheet = read_sheet(path, COLUMNS, optional=("objective", "remarks"))
    for row, cell in sheet:
        subject = subject_name(cell["subject"], width=2, prefix="S")
        filename = str(cell["filename"]).strip()
        folder = str(cell["emotion"]).strip()
        if find_media(root / folder / filename) is None:  # the folders may be named in lower case
            folder = folder.lower()
        yield RawRow.from_cells(
            row,
            cell,
            sheet=sheet.name,
            subject=subject,
            clip_id=filename,
            base=root / folder / filename,
            fps=fps or 90.0,
            numbering="file",
            extra=cells_present(cell, ("objective", "remarks")),
        )
