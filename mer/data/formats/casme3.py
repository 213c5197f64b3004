"""CAS(ME)^3 part A: the ME label sheet and frame folders ``<root>/spNO.1/<Filename>/color/175.jpg``.

Columns used: Subject (e.g. ``spNO.1``), Filename, Onset, Apex, Offset, AU, Objective class,
emotion. Each ``Filename`` is a long recording holding several micro-expressions and the names
repeat across subjects, so a clip id is ``<subject>/<Filename>/<onset>`` and the clip's span is
its onset..offset inside the recording. Frame cells are the image numbers. Recorded at 30 fps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mer.data.formats import RawRow, find_columns, read_table, register_format, rows

COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename",),
    "onset": ("Onset",),
    "apex": ("Apex",),
    "offset": ("Offset",),
    "aus": ("AU", "Action Units"),
    "objective": ("Objective class", "Objective classes"),
    "emotion": ("emotion", "Estimated Emotion"),
}


@register_format("casme3", label_map="casme3_7")
def read_casme3(path: Path, root: Path, fps: float | None = None) -> Iterator[RawRow]:
    table = read_table(path)
    columns = find_columns(table, path, COLUMNS, optional=("objective",))
    for row, cell in rows(table, columns):
        subject, filename = str(cell["subject"]).strip(), str(cell["filename"]).strip()
        onset = str(cell["onset"]).strip().removesuffix(".0")
        extra = {"objective": cell["objective"]} if cell["objective"] is not None else {}
        yield RawRow.from_cells(
            row,
            cell,
            subject=subject,
            clip_id=f"{subject}/{filename}/{onset}",
            base=root / subject / filename / "color",
            fps=fps or 30.0,
            numbering="file",
            event_span=True,
            extra=extra,
        )
