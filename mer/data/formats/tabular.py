"""Our plain ``csv`` format and the DFME-style ``dfme`` format (written by the synthetic generator).

``csv`` columns (one row per clip; header names are matched ignoring case and spaces):

    subject, clip, path, onset, apex, offset, emotion, aus, fps[, n_frames]

``path`` is a video file or a frame folder relative to ``root`` (default: the CSV's folder);
``onset``/``apex``/``offset`` are 0-based frame positions (for a frame folder: the i-th image in
numeric order); ``apex`` may be empty, ``/`` or -1 (then the midpoint is used); ``aus`` as
``1+2+L12``; ``fps`` the recording's frame rate.

``dfme`` is the layout of DFME's annotation (CSV or XLSX): ``subject``, ``clip`` (alias
``Filename``), ``onset``/``apex``/``offset`` (aliases ``OnsetFrame`` ...), ``emotion``, ``aus``
(alias ``Action Units``/``AU``), ``fps`` (DFME records at 200, 300 or 500 fps), ``n_frames``, and
an optional ``path``. Without ``path`` a clip is looked for at ``<root>/<subject>/<clip>`` as a
frame folder or a video file. Frame cells are the numbers in the frame files' names for frame
folders (as DFME ships them) and 0-based positions for video files.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mer.data.formats import RawRow, find_media, read_sheet, register_format

_COMMON = {
    "subject": ("subject", "sub", "participant"),
    "clip": ("clip", "clip_id", "filename", "file name", "video"),
    "path": ("path", "video_path", "file"),
    "onset": ("onset", "onsetframe", "onset frame"),
    "apex": ("apex", "apexframe", "apex frame"),
    "offset": ("offset", "offsetframe", "offset frame"),
    "emotion": ("emotion", "estimated emotion", "label"),
    "aus": ("aus", "action units", "au", "action_units"),
    "fps": ("fps", "frame rate", "framerate"),
    "n_frames": ("n_frames", "frames", "num_frames", "frame count"),
}


@register_format("csv", label_map="dfme7")
def read_csv(path: Path, root: Path, fps: float | None = None) -> Iterator[RawRow]:
    optional = ("apex", "aus", "n_frames") + (("fps",) if fps else ())
    sheet = read_sheet(path, _COMMON, optional=optional)
    for row, cell in sheet:
        media = root / str(cell["path"]).strip()
        yield RawRow(
            row=row,
            sheet=sheet.name,
            subject=str(cell["subject"]).strip(),
            clip_id=str(cell["clip"]).strip(),
            media=media if media.exists() else None,
            looked_for=str(media),
            onset=cell["onset"],
            apex=cell["apex"],
            offset=cell["offset"],
            emotion=cell["emotion"],
            aus=cell["aus"] or "",
            fps=fps or cell["fps"],
            n_frames=cell["n_frames"],
            numbering="position",
        )


@register_format("dfme", label_map="dfme7")
def read_dfme(path: Path, root: Path, fps: float | None = None) -> Iterator[RawRow]:
    optional = ("path", "apex", "aus", "n_frames") + (("fps",) if fps else ())
    sheet = read_sheet(path, _COMMON, optional=optional)
    for row, cell in sheet:
        subject, clip = str(cell["subject"]).strip(), str(cell["clip"]).strip()
        given = str(cell["path"]).strip() if cell["path"] not in (None, "") else ""
        base = root / given if given else root / subject / clip
        media = find_media(base)
        numbering = "file" if media is not None and media.is_dir() else "position"
        yield RawRow(
            row=row,
            sheet=sheet.name,
            subject=subject,
            clip_id=clip,
            media=media,
            looked_for=str(base),
            onset=cell["onset"],
            apex=cell["apex"],
            offset=cell["offset"],
            emotion=cell["emotion"],
            aus=cell["aus"] or "",
            fps=fps or cell["fps"],
            n_frames=cell["n_frames"],
            numbering=numbering,
        )
