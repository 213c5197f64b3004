"""SAMM: ``SAMM_Micro_FACS_Codes_v2.xlsx`` and frame folders ``<root>/006/006_1_2/006_05562.jpg``.

The header is found by name: on spreadsheet row 13 in the v2 release (preamble rows above it),
on row 1 in others. Columns used: Subject, Filename, Onset Frame, Apex Frame, Offset Frame, Action
Units, Estimated Emotion (Inducement Code, Notes and Objective Classes are kept in ``extra``).
An apex of -1 means none was coded. Frame cells are the numbers in the image names. 200 fps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mer.data.formats import RawRow, cells_present, read_sheet, register_format, subject_name

COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename",),
    "onset": ("Onset Frame", "Onset"),
    "apex": ("Apex Frame", "Apex"),
    "offset": ("Offset Frame", "Offset"),
    "aus": ("Action Units", "AU"),
    "emotion": ("Estimated Emotion", "Emotion"),
    "objective": ("Objective Classes", "Objective Class"),
    "inducement": ("Inducement Code",),
    "notes": ("Notes",),
}
OPTIONAL = ("objective", "inducement", "notes")


@register_format("samm", label_map="samm5")
def read_samm(path: Path, root: Path, fps: float | None = None) -> Iterator[RawRow]:
    sheet = read_sheet(path, COLUMNS, optional=OPTIONAL)
    for row, cell in sheet:
        subject = subject_name(cell["subject"], width=3)
        filename = str(cell["filename"]).strip()
        yield RawRow.from_cells(
            row,
            cell,
            sheet=sheet.name,
            subject=subject,
            clip_id=filename,
            base=root / subject / filename,
            fps=fps or 200.0,
            numbering="file",
            extra=cells_present(cell, OPTIONAL),
        )
