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
import csv
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
    event_span: bool = False  # the clip is only onset..offset of a longer recording (CAS(ME)^2 and ^3, SAMM-LV)
    looked_for: str = ""  # what was searched when media is None
    where: str = ""  # names the clip in messages when the data set has no rows (a clip folder)
    extra: dict = field(default_factory=dict)
    sheet: str | None = None  # the sheet's name when the workbook has several, for error messages
    expression_type: object = None  # a "micro"/"macro" cell of long-video sets: normalised into extra["type"]
    zero_uncoded: bool = False  # a frame cell of 0 means "not coded" (1-based sets: CAS(ME)^2, SAMM-LV)

    @classmethod
    def from_cells(cls, row: int, cells: dict, *, subject: str, clip_id: str, base: Path | None = None, **fields) -> RawRow:
        """The row of a sheet whose onset, apex, offset, emotion and aus cells carry these names
        (as :func:`read_sheet`'s rows give them; apex and aus may be absent), its clip looked for at
        ``base`` by :func:`find_media`, or given as ``media`` and ``looked_for`` when a reader
        finds it its own way (the recordings of CAS(ME)^2 and ^3)."""
        cells = {"apex": None, "aus": ""} | cells
        if base is not None:
            fields = {"media": find_media(base), "looked_for": str(base)} | fields
        return cls(
            row=row,
            subject=subject,
            clip_id=clip_id,
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
        format: one of :func:`list_formats` (csv, dfme, casme2, samm, casme3, casme_sq, samm_lv,
            smic, smic_e, mmew, 4dme).
        root: folder the clips' paths are relative to (default: the annotation file's folder; a
            folder-labelled data set is read from ``path`` itself).
        label_map: which classes to learn (dfme7, casme2_5, megc3, all, ...); None (default): the
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
            message = f"{raw.where or where(path, raw.sheet, raw.row)}: {_one_line(exc, raw)}"
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


def _event_cells(raw: RawRow) -> tuple[int | None, int | None, int | None, list[str]]:
    """Onset, apex (None: not coded) and offset frame numbers, and which of onset/offset the apex stands in for.

    Where 0 means "not coded" (``raw.zero_uncoded``), a missing onset or offset is the apex, as the
    spotting baselines read CAS(ME)^2 and SAMM-LV (SoftNet, MTSN: "take apex if offset is 0"). A
    whole clip (``raw.whole_clip``) has neither: None, its first and last frame once they are counted.
    """
    onset = None if raw.whole_clip else _frame_cell(raw.onset, "onset")
    apex = _frame_cell(raw.apex, "apex", optional=True)
    offset = None if raw.whole_clip else _frame_cell(raw.offset, "offset")
    from_apex: list[str] = []
    if raw.zero_uncoded:
        apex = None if apex == 0 else apex
        if 0 in (onset, offset):
            from_apex = [name for name, value in (("onset", onset), ("offset", offset)) if value == 0]
            if apex is None:
                raise ValueError(f"{' and '.join(from_apex)} and apex are all 0 (not coded)")
            onset, offset = (apex if onset == 0 else onset), (apex if offset == 0 else offset)
    return onset, apex, offset, from_apex


def _expression_type(value: object) -> str:
    """'Micro - 1/2', 'micro-expression' -> 'micro'; 'Macro', 'macro-expression' -> 'macro'."""
    if _blank(value):
        raise ValueError("expression type (micro / macro) is missing")
    text = str(value).strip().lower()
    for kind in ("micro", "macro"):
        if text.startswith(kind):
            return kind
    raise ValueError(f"expression type {value!r} is neither micro nor macro")


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
    onset, apex, offset, from_apex = _event_cells(raw)
    extra = dict(raw.extra)
    if raw.expression_type is not None:
        extra["type"] = _expression_type(raw.expression_type)
    if from_apex:
        extra["from_apex"] = from_apex
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
        extra=extra,
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


HEADER_SEARCH_ROWS = 30  # a header is looked for in a sheet's first rows (SAMM's preambles end on row 10 or 12)


def where(path: Path, sheet: str | None = None, row: int | None = None) -> str:
    """``file``, ``file, sheet 'x'``, ``file, sheet 'x', row 5``: the place an error names."""
    return f"{path}" + (f", sheet {sheet!r}" if sheet is not None else "") + (f", row {row}" if row is not None else "")


def read_sheets(path: Path) -> dict[str, pd.DataFrame]:
    """Every sheet of a spreadsheet (a CSV is one sheet named "") as its cells, no header: index i is row i + 1."""
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
            sheets = pd.read_excel(path, sheet_name=None, header=None)
        else:
            with open(path, newline="", encoding="utf-8-sig") as f:
                lines = [[cell.strip() for cell in line] for line in csv.reader(f)]
            width = max((len(line) for line in lines), default=0)
            sheets = {"": pd.DataFrame([line + [""] * (width - len(line)) for line in lines], dtype=object)}
    except Exception as exc:  # pandas and csv raise many types for unreadable files
        raise AnnotationError(f"{path}: cannot read the annotation table: {' '.join(str(exc).split())}") from None
    return {str(name): raw for name, raw in sheets.items()}


def _blank(value: object) -> bool:
    return value is None or _isnan(value) or (isinstance(value, str) and not value.strip())


def _table(raw: pd.DataFrame, header_row: int) -> pd.DataFrame:
    """The rows below spreadsheet row ``header_row`` named by its cells; index 0 is the first row below it."""
    names = [f"Unnamed: {i}" if _blank(v) else str(v).strip() for i, v in enumerate(raw.iloc[header_row - 1])]
    table = raw.iloc[header_row:].copy()
    table.columns = names
    table.index = range(len(table))
    return table[~table.map(_blank).all(axis=1)]  # blank lines are not rows; the index keeps positions


class MissingColumnError(AnnotationError):
    """A table's header lacks a column the format needs."""


def _key(name: object) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def find_columns(
    table: pd.DataFrame, path: Path, spec: dict[str, tuple[str, ...]], optional: Iterable[str] = (), sheet: str | None = None
) -> dict[str, str | None]:
    """Map our names to the table's columns by aliases, ignoring case, spaces and punctuation."""
    by_key: dict[str, str] = {}
    for c in table.columns:
        by_key.setdefault(_key(c), c)  # a repeated name: the first column, as a reader's eye would
    optional = set(optional)
    found: dict[str, str | None] = {}
    for name, aliases in spec.items():
        column = next((by_key[_key(a)] for a in aliases if _key(a) in by_key), None)
        if column is None and name not in optional:
            have = ", ".join(str(c) for c in table.columns)
            raise MissingColumnError(f"{where(path, sheet)}: missing column {aliases[0]!r} (columns: {have})")
        found[name] = column
    return found


def find_header_row(
    raw: pd.DataFrame,
    path: Path,
    spec: dict[str, tuple[str, ...]],
    optional: Iterable[str] = (),
    sheet: str | None = None,
) -> int:
    """The spreadsheet row (1-based) of ``raw``'s header: the first of its first rows holding every required column.

    Columns are matched as :func:`find_columns` matches them (aliases, ignoring case, spaces and
    punctuation), so preamble rows before the header (SAMM v2, SAMM-LV) are passed over. Without
    such a row, the row holding most of them (at least half) is taken, for :func:`find_columns` to
    name what it lacks.
    """
    required = [aliases for name, aliases in spec.items() if name not in set(optional)]
    keys = [{_key(a) for a in aliases} for aliases in required]
    best, best_count = None, (len(keys) + 1) // 2 - 1
    for i in range(min(HEADER_SEARCH_ROWS, len(raw))):
        cells = {_key(v) for v in raw.iloc[i] if not _blank(v)}
        count = sum(bool(k & cells) for k in keys)
        if count == len(keys):
            return i + 1
        if count > best_count:
            best, best_count = i + 1, count
    if best is not None:
        return best
    looked_for = ", ".join(aliases[0] for aliases in required)
    raise AnnotationError(
        f"{where(path, sheet)}: no header row with the columns {looked_for} in the first {HEADER_SEARCH_ROWS} rows"
    )


@dataclass
class Sheet:
    """A table of an annotation file: its data rows, its header's row and where our columns are."""

    path: Path
    name: str | None  # the sheet's name when the workbook has several, else None (messages name it then)
    header_row: int
    table: pd.DataFrame
    columns: dict[str, str | None]

    def __iter__(self) -> Iterator[tuple[int, dict]]:
        """(spreadsheet row number, {our name: cell}) for each data row."""
        return rows(self.table, self.columns, self.header_row)


def read_sheet(
    path: Path, spec: dict[str, tuple[str, ...]], *, optional: Iterable[str] = (), sheet: int | str | None = None
) -> Sheet:
    """The table of ``path`` whose header holds ``spec``'s columns, wherever that header is.

    ``sheet=None`` takes the first sheet with such a header (releases move and rename sheets);
    the header is the first of the sheet's first rows that names every required column. When no
    sheet has one, the error names the columns a near-header lacks, or the columns looked for.
    """
    optional = tuple(optional)
    sheets = read_sheets(path)
    names = list(sheets)
    if sheet is not None:
        try:
            names = [names[sheet] if isinstance(sheet, int) else names[names.index(sheet)]]
        except (IndexError, ValueError):
            raise AnnotationError(f"{path}: no sheet {sheet!r} (sheets: {', '.join(sheets)})") from None
    several = len(sheets) > 1
    error, partial = AnnotationError(f"{path}: the file has no sheets"), None
    for name in names:
        label = name if several else None
        try:
            header_row = find_header_row(sheets[name], path, spec, optional, sheet=label)
            table = _table(sheets[name], header_row)
            return Sheet(path, label, header_row, table, find_columns(table, path, spec, optional, sheet=label))
        except MissingColumnError as exc:  # a header lacking some: said when no sheet has them all
            partial = partial or exc
        except AnnotationError as exc:
            error = exc
    if partial is not None:
        raise partial
    if len(names) > 1:
        looked_for = ", ".join(a[0] for n, a in spec.items() if n not in optional)
        raise AnnotationError(f"{path}: no sheet has a header row with the columns {looked_for} (sheets: {', '.join(names)})")
    raise error


def cells_present(cell: dict, names: Iterable[str]) -> dict:
    """The cells of ``names`` that hold something: the optional columns a reader keeps in ``extra``."""
    return {k: cell[k] for k in names if not _blank(cell[k])}


def rows(table: pd.DataFrame, columns: dict[str, str | None], header_row: int = 1) -> Iterator[tuple[int, dict]]:
    """(spreadsheet row number, {our name: cell}) for each data row."""
    for index, series in table.iterrows():  # blank rows were removed; the index keeps positions
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
from mer.data.formats import casme2, casme3, casme_sq, fourdme, mmew, samm, samm_lv, smic, smic_e, tabular  # noqa: E402,F401
