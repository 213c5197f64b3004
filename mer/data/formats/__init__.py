"""Annotation readers: one per data set format, all producing validated :class:`ClipRecord` lists.

    records = read_annotations("CASME2-coding-20140508.xlsx", format="casme2", root="CASME2_RAW_selected")

A reader (``mer/data/formats/<name>.py``) only knows its file's layout: it yields :class:`RawRow`
objects with the cells it found, and registers with the label map of its data set's own classes
(the default of ``read_annotations``). Everything else — parsing AUs and emotions, turning frame
numbers into positions, checking onset <= apex <= offset inside the clip, label maps, strict or
lenient handling of bad rows, reporting the clips a label map leaves out — happens once, here.
"""

from __future__ import annotations

import bisect
import logging
import math
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mer.data.aus import parse_aus
from mer.data.labels import LABEL_MAPS, LabelMap, get_label_map, normalise_emotion
from mer.data.records import AnnotationError, ClipRecord, check_event
from mer.data.video import VIDEO_SUFFIXES, VideoError, count_frames, list_frame_files
from mer.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnnotationFormat:
    """A registered reader and what ``read_annotations`` needs to know about its data set."""

    read: Callable[..., Iterator[RawRow]]
    label_map: str  # the data set's own classes: read_annotations' default
    folder: bool = False  # the annotation is a folder tree labelled by its folder names (SMIC), not a file

    def __call__(self, path: Path, root: Path, fps: float | None = None) -> Iterator[RawRow]:
        return self.read(path, root=root, fps=fps)


FORMATS: Registry[AnnotationFormat] = Registry("annotation format")


def register_format(name: str, *, label_map: str, folder: bool = False) -> Callable:
    """Register a reader as format ``name``, with the label map of its data set's own classes."""

    LABEL_MAPS.get(label_map)  # a misspelt map fails on import, not on the first read

    def add(read: Callable[..., Iterator[RawRow]]) -> Callable[..., Iterator[RawRow]]:
        FORMATS.register(name)(AnnotationFormat(read, label_map, folder))
        return read

    return add


@dataclass
class RawRow:
    """The cells of one annotation row, before validation."""

    row: int  # as a spreadsheet shows it (1-based, header included), for error messages; 0 when there are no rows
    subject: str
    clip_id: str
    media: Path | None  # video file or frame folder; None when it could not be found
    onset: object
    apex: object
    offset: object
    emotion: object
    aus: object = ""
    fps: object = None
    n_frames: object = None
    # "position": frames are 0-based positions; "file": frame numbers as written in frame file names
    # "first": frame numbers counted from the recording's first frame number, given in ``first_frame``
    numbering: str = "position"
    first_frame: object = None
    whole_clip: bool = False  # no onset or offset in the data (SMIC): the clip is the event, first to last frame
    event_span: bool = False  # the clip is only onset..offset of a longer recording (CAS(ME)^3)
    looked_for: str = ""  # what was searched when media is None
    where: str = ""  # names the clip in messages when the data set has no rows (a clip folder)
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_cells(cls, row: int, cells: dict, *, subject: str, clip_id: str, base: Path, **fields) -> RawRow:
        """The row of a sheet whose onset, apex, offset, emotion and aus cells carry these names
        (as :func:`find_columns` gives them; apex and aus may be absent), its clip looked for at
        ``base`` by :func:`find_media`."""
        cells = {"apex": None, "aus": ""} | cells
        return cls(
            row=row,
            subject=subject,
            clip_id=clip_id,
            media=find_media(base),
            looked_for=str(base),
            **{name: cells[name] for name in ("onset", "apex", "offset", "emotion", "aus")},
            **fields,
        )


class Annotations(list):
    """A list of ClipRecords that also reports what was left out.

    ``skipped``: one-line messages of invalid rows skipped with ``strict=False``;
    ``excluded``: emotions the label map leaves out (e.g. "others" in megc3), with counts (also logged).
    """

    def __init__(self, records: Iterable[ClipRecord] = (), skipped=None, excluded=None) -> None:
        super().__init__(records)
        self.skipped: list[str] = list(skipped or [])
        self.excluded: Counter = Counter(excluded or {})


def list_formats() -> list[str]:
    return FORMATS.names()


def default_label_map(format: str) -> str:
    """The label map of a format's own classes (casme2 -> casme2_5): ``read_annotations``' default."""
    return FORMATS.get(format).label_map


def format_label_map(format: str, label_map: str | LabelMap | None = None) -> LabelMap:
    """The label map ``label_map`` names, or the format's own when it is None."""
    return get_label_map(default_label_map(format) if label_map is None else label_map)


def read_annotations(
    path: str | os.PathLike,
    format: str = "csv",
    root: str | os.PathLike | None = None,
    *,
    label_map: str | LabelMap | None = None,
    strict: bool = True,
    fps: float | None = None,
) -> Annotations:
    """Read an annotation file (or a folder-labelled data set) into validated ClipRecords.

    Args:
        path: the annotation file (CSV or XLSX, as the format expects); for a data set labelled
            by its folders (smic), its folder.
        format: one of :func:`list_formats` (csv, dfme, casme2, samm, casme3, smic, smic_e, mmew, 4dme).
        root: folder the clips' paths are relative to (default: the annotation file's folder; a
            folder-labelled data set is read from ``path`` itself).
        label_map: which classes to learn (dfme7, casme2_5, megc3, ...); None (default): the
            format's own (:func:`default_label_map`). Clips of emotions the map excludes are left
            out, logged with their counts and counted in ``.excluded``.
        strict: raise :class:`AnnotationError` on the first invalid row (default), or skip it with
            a warning and count it in ``.skipped``.
        fps: frame rate for formats whose file has none (overrides the format's default).
    """
    path = Path(path)
    reader = FORMATS.get(format)
    if reader.folder and not path.is_dir():
        raise AnnotationError(f"{path}: data set folder not found ({format} is labelled by its folders)")
    if not reader.folder and not path.is_file():
        raise AnnotationError(f"{path}: annotation file not found")
    root = Path(root) if root is not None else (path if reader.folder else path.parent)
    labels = format_label_map(format, label_map)
    out = Annotations()
    seen: dict[str, int] = {}
    for raw in reader(path, root=root, fps=fps):
        try:
            record = _build_record(raw, format, labels)
            if record.clip_id in seen:
                raise ValueError(f"clip id {record.clip_id!r} repeats row {seen[record.clip_id]}")
            seen[record.clip_id] = raw.row
        except _Excluded as exc:
            out.excluded[exc.emotion] += 1
            continue
        except (ValueError, VideoError) as exc:
            message = f"{raw.where or f'{path}, row {raw.row}'}: {_one_line(exc, raw)}"
            if strict:
                raise AnnotationError(message + " (strict=False skips such rows)") from None
            warnings.warn(message, stacklevel=2)
            out.skipped.append(message)
            continue
        out.append(record)
    if out.excluded:
        counts = ", ".join(f"{emotion} {n}" for emotion, n in out.excluded.most_common())
        log.warning("%s: label map %s leaves out %d clips (%s)", path, labels.name, out.excluded.total(), counts)
    if out.skipped:
        warnings.warn(f"{path}: skipped {len(out.skipped)} invalid rows, kept {len(out)}", stacklevel=2)
    return out


class _Excluded(Exception):
    def __init__(self, emotion: str) -> None:
        self.emotion = emotion


def _one_line(exc: Exception, raw: RawRow) -> str:
    if isinstance(exc, VideoError):
        return exc.reason + f" ({exc.path})"
    return " ".join(str(exc).split())


def _frame_cell(value: object, name: str, *, optional: bool = False) -> int | None:
    """An integer frame cell; for ``optional`` cells, '', '/', '-', NaN and -1 mean missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        missing = True
    else:
        text = str(value).strip()
        missing = text in ("", "/", "-", "nan", "NaN", "None")
        if not missing:
            try:
                number = float(text)
            except ValueError:
                raise ValueError(f"{name} {text!r} is not a frame number") from None
            if not number.is_integer():
                raise ValueError(f"{name} {text!r} is not a whole frame number")
            if optional and number == -1:
                return None
            return int(number)
    if optional:
        return None
    raise ValueError(f"{name} is missing")


def _build_record(raw: RawRow, fmt: str, labels: LabelMap) -> ClipRecord:
    if str(raw.subject).strip() in ("", "nan", "None"):
        raise ValueError("subject is missing")
    emotion = normalise_emotion(raw.emotion) if str(raw.emotion).strip() else None
    if emotion is None:
        raise ValueError("emotion is missing")
    label = labels.index(emotion)
    if label is None:
        raise _Excluded(emotion)
    aus = parse_aus(raw.aus)
    onset = None if raw.whole_clip else _frame_cell(raw.onset, "onset")
    apex = _frame_cell(raw.apex, "apex", optional=True)
    offset = None if raw.whole_clip else _frame_cell(raw.offset, "offset")
    if raw.media is None:
        raise ValueError(f"missing video or frame folder ({raw.looked_for})")
    media = raw.media
    first_frame = 0
    if raw.numbering == "first":
        first_frame = _frame_cell(raw.first_frame, "first frame")
        onset, apex, offset = (_from_first(n, first_frame, name) for n, name in _events(onset, apex, offset))
    if media.is_dir():
        files = list_frame_files(media)
        n_frames = len(files)
        if raw.numbering == "file":
            numbers = [n for n, _ in files]
            first_frame = numbers[0]
            onset, apex, offset = (_position(numbers, n, name, media) for n, name in _events(onset, apex, offset))
    elif media.exists():
        n_frames = _frame_cell(raw.n_frames, "n_frames", optional=True)
        counted = count_frames(media)  # a demux of the file, cached: cheap, and it finds a wrong count now, not mid-training
        if n_frames is not None and n_frames != counted:
            raise ValueError(f"the annotation says {n_frames} frames but {media.name} holds {counted}")
        n_frames = counted
    else:
        raise ValueError(f"missing video or frame folder {media}")
    if raw.whole_clip:
        onset, offset = 0, n_frames - 1
    if apex is not None and not 0 <= apex < n_frames:
        raise ValueError(f"apex {apex} is outside the clip ({n_frames} frames)")
    apex, estimated = check_event(onset, apex, offset, n_frames)
    fps = float(raw.fps) if raw.fps not in (None, "") and not _isnan(raw.fps) else None
    if fps is None or fps <= 0:
        raise ValueError(f"fps {raw.fps!r} is not a frame rate")
    start, stop = (onset, offset + 1) if raw.event_span else (0, n_frames)
    return ClipRecord(
        subject=str(raw.subject),
        clip_id=str(raw.clip_id),
        path=str(media),
        onset=onset,
        apex=apex,
        offset=offset,
        emotion=emotion,
        label=label,
        aus=aus,
        fps=fps,
        n_frames=n_frames,
        source=fmt,
        apex_estimated=estimated,
        start=start,
        stop=stop,
        first_frame=first_frame,
        extra=dict(raw.extra),
    )


def _isnan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _events(onset: int | None, apex: int | None, offset: int | None) -> tuple[tuple[int | None, str], ...]:
    return (onset, "onset"), (apex, "apex"), (offset, "offset")


def _position(numbers: list[int], number: int | None, name: str, folder: Path) -> int | None:
    """Position of frame ``number`` among a folder's sorted frame numbers (None stays None)."""
    if number is None:
        return None
    i = bisect.bisect_left(numbers, number)
    if i == len(numbers) or numbers[i] != number:
        raise ValueError(f"{name} frame {number} is not in {folder} (frames {numbers[0]}..{numbers[-1]})")
    return i


def _from_first(number: int | None, first: int, name: str) -> int | None:
    """Position of frame ``number`` in a recording whose first frame is numbered ``first`` (None stays None)."""
    if number is None:
        return None
    if number < first:
        raise ValueError(f"{name} frame {number} is before the recording's first frame {first}")
    return number - first


# ---- helpers shared by the readers ---------------------------------------------------------


def read_table(path: Path, *, header_row: int = 1, sheet: int | str = 0) -> pd.DataFrame:
    """A CSV or spreadsheet as strings-or-numbers, with its header on spreadsheet row ``header_row``."""
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
            table = pd.read_excel(path, sheet_name=sheet, header=header_row - 1)
        else:
            table = pd.read_csv(path, header=header_row - 1, dtype=str, keep_default_na=False, skipinitialspace=True)
    except Exception as exc:  # pandas raises many types for unreadable files
        raise AnnotationError(f"{path}: cannot read the annotation table: {' '.join(str(exc).split())}") from None
    table = table.dropna(how="all")
    return table


def _key(name: object) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def find_columns(
    table: pd.DataFrame, path: Path, spec: dict[str, tuple[str, ...]], optional: Iterable[str] = ()
) -> dict[str, str | None]:
    """Map our names to the table's columns by aliases, ignoring case, spaces and punctuation."""
    by_key = {_key(c): c for c in table.columns}
    optional = set(optional)
    found: dict[str, str | None] = {}
    for name, aliases in spec.items():
        column = next((by_key[_key(a)] for a in aliases if _key(a) in by_key), None)
        if column is None and name not in optional:
            have = ", ".join(str(c) for c in table.columns)
            raise AnnotationError(f"{path}: missing column {aliases[0]!r} (columns: {have})")
        found[name] = column
    return found


def rows(table: pd.DataFrame, columns: dict[str, str | None], header_row: int = 1) -> Iterator[tuple[int, dict]]:
    """(spreadsheet row number, {our name: cell}) for each data row."""
    for index, series in table.iterrows():  # dropna() may have removed rows; the index keeps positions
        cells = {name: (series[col] if col is not None else None) for name, col in columns.items()}
        yield header_row + 1 + int(index), cells


def find_media(base: Path) -> Path | None:
    """``base`` as a frame folder, or ``base`` plus a video suffix, whichever exists."""
    if base.is_dir() or (base.is_file() and base.suffix.lower() in VIDEO_SUFFIXES):
        return base
    for suffix in VIDEO_SUFFIXES:
        candidate = base.with_name(base.name + suffix)
        if candidate.is_file():
            return candidate
    return None


def subject_name(value: object, width: int = 0, prefix: str = "") -> str:
    """Spreadsheet subjects come as 1, 1.0 or '01'; give them one spelling: ``prefix`` + zero-padded."""
    text = str(value).strip()
    try:
        number = float(text)
        if number.is_integer():
            return f"{prefix}{int(number):0{width}d}"
    except ValueError:
        pass
    return text


# register the readers
from mer.data.formats import casme2, casme3, fourdme, mmew, samm, smic, smic_e, tabular  # noqa: E402,F401
