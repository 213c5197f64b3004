"""SMIC-E (HS, VIS, NIR): ``SMIC-{HS,VIS,NIR}-E_annotation.xlsx`` and the long clips' frame folders
``<root>/s01/<Filename>/image022153.jpg``.

Columns used: Subject (a number), Filename, OnsetF, OffsetF, Emotion, FirstF, and ApexF when the
sheet has it. Frame numbers are the recording's: a position in the long clip is the frame number
minus FirstF. Without ApexF the apex is the midpoint (``apex_estimated``). No AUs. The modality,
read from the file name, gives the frame rate: HS 100 fps, VIS and NIR 25.

The HS sheet ends with free-text notes under the table: rows after the last row that names a
clip (a subject number and a file name) are read as notes, not as clips, and logged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

from mer.data.formats import RawRow, read_sheet, register_format, subject_name, where
from mer.data.formats.smic import MODALITY_FPS
from mer.data.records import AnnotationError

log = logging.getLogger(__name__)

COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename",),
    "onset": ("OnsetF", "Onset Frame"),
    "apex": ("ApexF", "Apex Frame"),
    "offset": ("OffsetF", "Offset Frame"),
    "emotion": ("Emotion",),
    "first": ("FirstF", "First Frame"),
}


@register_format("smic_e", label_map="megc3")
def read_smic_e(path: Path, root: Path, fps: float | None = None) -> Iterator[RawRow]:
    fps = fps or _modality_fps(path)
    sheet = read_sheet(path, COLUMNS, optional=("apex",))
    table_rows = list(sheet)
    clips = [i for i, (_, cell) in enumerate(table_rows) if _names_a_clip(cell)]
    end = clips[-1] + 1 if clips else len(table_rows)
    if end < len(table_rows):
        log.info(
            "%s: the %d rows after row %d read as notes, not clips",
            where(path, sheet.name),
            len(table_rows) - end,
            table_rows[end - 1][0],
        )
    for row, cell in table_rows[:end]:  # a broken row inside the table is still a row, and an error
        subject = subject_name(cell["subject"], width=2, prefix="s")
        filename = str(cell["filename"]).strip()
        yield RawRow.from_cells(
            row,
            cell,
            sheet=sheet.name,
            subject=subject,
            clip_id=filename,
            base=root / subject / filename,
            fps=fps,
            numbering="first",
            first_frame=cell["first"],
        )


def _names_a_clip(cell: dict) -> bool:
    """A table row, not a note: a subject number (3, 3.0, s03) and a file name."""
    subject, filename = str(cell["subject"]).strip(), str(cell["filename"]).strip()
    return re.fullmatch(r"s?\d+(\.0)?", subject, re.IGNORECASE) is not None and filename not in ("", "nan")


def _modality_fps(path: Path) -> float:
    """HS, VIS or NIR, as the file name says (SMIC-HS-E_annotation.xlsx), to its frame rate."""
    found = re.search(r"(?<![A-Z])(HS|VIS|NIR)(?![A-Z])", path.name.upper())
    if found is None:
        raise AnnotationError(f"{path}: the file name does not say HS, VIS or NIR; give the frame rate (fps=...)")
    return MODALITY_FPS[found[1]]
