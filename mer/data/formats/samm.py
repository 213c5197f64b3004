"""SAMM: ``SAMM_Micro_FACS_Codes_v2.xlsx`` (header on spreadsheet row 13) and frame folders
``<root>/006/006_1_2/006_05562.jpg``.

Columns used: Subject, Filename, Onset Frame, Apex Frame, Offset Frame, Action Units, Estimated
Emotion (Inducement Code, Duration, Micro, Notes and Objective Classes are kept in ``extra``).
An apex of -1 means none was coded. Frame cells are the numbers in the image names. 200 fps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mer.data.formats import RawRow, find_columns, read_table, register_format, rows, subject_name

HEADER_ROW = 13
COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename",),
    "onset": ("Onset Frame", "OnsetFrame"),
    "apex": ("Apex Frame", "ApexFrame"),
    "offset": ("Offset Frame", "OffsetFrame"),
    "aus": ("Action Units",),
    "emotion": ("Estimated Emotion", "Emotion"),
    "objective": ("Objective Classes", "Objective Class"),
    "inducement": ("Inducement Code",),
    "notes": ("Notes",),
}
OPTIONAL = ("objective", "inducement", "notes")


@register_format("samm", label_map="samm5")
def read_samm(path: Path, root: Path, fps: float | None = None) -> Iterator[RawRow]:
    table = read_table(path, header_row=HEADER_ROW)
    columns = find_columns(table, path, COLUMNS, optional=OPTIONAL)
    for row, cell in rows(table, columns, header_row=HEADER_ROW):
        subject = subject_name(cell["subject"], width=3)
        filename = str(cell["filename"]).strip()
        extra = {k: cell[k] for k in OPTIONAL if cell[k] is not None and str(cell[k]) != "nan"}
        yield RawRow.from_cells(
            row,
            cell,
            subject=subject,
            clip_id=filename,
            base=root / subject / filename,
            fps=fps or 200.0,
            numbering="file",
            extra=extra,
        )
