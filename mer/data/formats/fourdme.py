"""4DME: ``4DME_Labelling_Micro_release v1.xlsx`` and the gray frame folders
``<root>/gray_micro/<sub_ID>/<fold_name>/``.

Columns used: sub_ID, fold_name, Emotion, Onset, Apex, Offset, AUs (tokens with a suffix such as
``AU4(L)``: mer.data.aus reads it). The sheet also has one column per AU (AU1, AU2, ...): they repeat the
AUs cell and are not read. Emotions are 4DME's five: positive, negative, surprise, repression,
others. ``root`` may be the folder holding ``gray_micro`` (default: the sheet's folder) or
``gray_micro`` itself. Frame cells are the numbers in the image names. Recorded at 60 fps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mer.data.formats import RawRow, read_sheet, register_format, subject_name

COLUMNS = {
    "subject": ("sub_ID", "Subject"),
    "fold": ("fold_name",),
    "onset": ("Onset",),
    "apex": ("Apex",),
    "offset": ("Offset",),
    "aus": ("AUs", "Action Units"),
    "emotion": ("Emotion",),
}


@register_format("4dme", label_map="4dme5")
def read_4dme(path: Path, root: Path, fps: float | None = None) -> Iterator[RawRow]:
    sheet = read_sheet(path, COLUMNS)
    frames = root / "gray_micro" if (root / "gray_micro").is_dir() else root
    for row, cell in sheet:
        subject = subject_name(cell["subject"])
        fold = str(cell["fold"]).strip()
        yield RawRow.from_cells(
            row,
            cell,
            sheet=sheet.name,
            subject=subject,
            clip_id=f"{subject}/{fold}",
            base=frames / subject / fold,
            fps=fps or 60.0,
            numbering="file",
        )
