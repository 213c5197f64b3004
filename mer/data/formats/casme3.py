"""CAS(ME)^3 parts A and C: the ME label sheet and frame folders of the long recordings.

Part A (``cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx``, sheet ``label``): Subject (e.g.
``spNO.1``), Filename, Onset, Apex, Offset, AU, Objective class, emotion; frames at
``<root>/spNO.1/<Filename>/color/175.jpg``. The macro-expression sheet's spellings (sub, seq,
onset, apex, offset, emotion) read too.

Part C (``CAS(ME)3_part_C_ME.xlsx``): sub (e.g. 1), count, onset, offset, emotion; no apex
column (the midpoint stands in, ``apex_estimated``) and no Filename: a subject's recording is the
one folder under ``<root>/01/`` holding ``color/`` (e.g. ``<root>/01/a/color/373.jpg``).

Each recording holds several expressions and the names repeat across subjects, so a clip id is
``<subject>/<recording>/<onset>`` and the clip's span is its onset..offset inside the recording
(``extra["video"]`` names the recording). Frame cells are the image numbers. 30 fps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mer.data.formats import RawRow, cells_present, read_sheet, register_format, subject_name

COLUMNS = {
    "subject": ("Subject", "sub"),
    "filename": ("Filename", "seq"),
    "onset": ("Onset", "Onset Frame"),
    "apex": ("Apex", "Apex Frame"),
    "offset": ("Offset", "Offset Frame"),
    "aus": ("AU", "Action Units", "AUs"),
    "emotion": ("emotion", "Estimated Emotion"),
    "objective": ("Objective class", "Objective classes"),
    "type": ("Expression type", "type"),
}
OPTIONAL = ("filename", "apex", "aus", "objective", "type")


def _recording(root: Path, subject: str, filename: str) -> tuple[Path | None, str]:
    """The folder of a recording's colour frames, and what was looked for when there is none."""
    folders = [root / subject] + ([root / f"{int(subject):02d}"] if subject.isdigit() else [])
    for folder in folders:
        if filename:  # part A: named; the folders are lower-case where the sheet is not
            candidates = [folder / filename, folder / filename.lower()]
        else:  # part C: the one recording under the subject's folder
            candidates = [folder] + (sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else [])
        for recording in candidates:
            if (recording / "color").is_dir():
                return recording / "color", ""
    return None, f"{folders[-1] / (filename or '*')}/color"


@register_format("casme3", label_map="casme3_7")
def read_casme3(path: Path, root: Path, fps: float | None = None) -> Iterator[RawRow]:
    sheet = read_sheet(path, COLUMNS, optional=OPTIONAL)
    for row, cell in sheet:
        subject = subject_name(cell["subject"])
        filename = "" if cell["filename"] is None else str(cell["filename"]).strip()
        media, looked_for = _recording(root, subject, filename)
        recording = media.parent.relative_to(root).as_posix() if media is not None else f"{subject}/{filename}"
        onset = str(cell["onset"]).strip().removesuffix(".0")
        yield RawRow.from_cells(
            row,
            cell,
            sheet=sheet.name,
            subject=subject,
            clip_id=f"{subject}/{filename or recording.rsplit('/', 1)[-1]}/{onset}",
            media=media,
            looked_for=looked_for,
            fps=fps or 30.0,
            numbering="file",
            event_span=True,
            expression_type=cells_present(cell, ("type",)).get("type"),
            extra={"video": recording} | cells_present(cell, ("objective",)),
        )
