"""Raw recordings prepared once: each annotated clip aligned by the eyes and written as a frame folder.

    records = load_records(data_cfg, label_map="all")  # every emotion kept: the label map is chosen when training
    summary = prepare_clips(records, "prepared/", size=224)
    summary.table                       # the rows of prepared/annotations.csv (a DataFrame)

Training then reads the prepared set like any other (``data=csv
data.annotations=prepared/annotations.csv``), with no face detection per epoch. The output folder:

    annotations.csv            one row per prepared clip in the ``csv`` format (subject, clip, path,
                               onset, apex, offset, emotion, aus, fps, n_frames), frame positions
                               counted from the clip's first written frame; then where it came from
                               (source_path) and how it was aligned (alignment eyes | face_box, angle, scale)
    <subject>/<clip>/          the clip's frames 000000.png ... and alignment.json (the transform)
    no_face.csv                clips where no frame showed a face (subject, clip, path): not prepared
    failed.txt                 one line per clip that could not be read or written
    prepare.json               the settings the set was made with

Each clip is written to a hidden ``.<clip>.partial`` folder renamed into place when complete, so
a killed run leaves whole clips and one partial folder; a second run skips the whole clips and
redoes the rest. Every emotion is kept (the label map is chosen when training).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mer.data.align import EYE_DISTANCE, EYE_HEIGHT, EyeLocator, clip_alignment
from mer.data.records import ClipRecord
from mer.data.video import open_video, write_frame_folder

IMAGE_FORMATS = ("png", "jpg")
CHUNK = 32  # frames decoded, aligned and written at a time: a long clip never sits whole in memory
SETTINGS_FILE, ALIGNMENT_FILE = "prepare.json", "alignment.json"
# annotations.csv: the csv format's columns, then where each clip came from and how it was aligned
ROW_COLUMNS = (
    *("subject", "clip", "path", "onset", "apex", "offset", "emotion", "aus", "fps", "n_frames"),
    *("source_path", "alignment", "angle", "scale"),
)


@dataclass
class PrepareSummary:
    """What a run did: clip ids prepared and skipped (prepared before), clips without a face
    (subject, clip, path), failures (one line each), and the rows of annotations.csv."""

    prepared: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    no_face: list[tuple[str, str, str]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    table: pd.DataFrame | None = None
    output: Path | None = None

    @property
    def face_box(self) -> list[str]:
        """The prepared set's clips aligned by the face box alone (no pair of eyes found)."""
        return [] if self.table is None else self.table.loc[self.table.alignment == "face_box", "clip"].tolist()

    def line(self) -> str:
        table = self.output / "annotations.csv" if self.output else "annotations.csv"
        eyes = len(self.table) - len(self.face_box) if self.table is not None else 0
        return (
            f"prepared {len(self.prepared)}, skipped {len(self.skipped)} (done before), no face {len(self.no_face)}"
            f"{' (no_face.csv)' if self.no_face else ''}, failed {len(self.failed)}{' (failed.txt)' if self.failed else ''}"
            f" -> {table}: {eyes} clips aligned by the eyes, {len(self.face_box)} by the face box only"
        )


def clip_folder(output: Path, record: ClipRecord) -> Path:
    """Where a clip's frames go: ``<output>/<subject>/<clip>``, names reduced to safe characters."""
    return output / _safe(record.subject) / _safe(record.clip_id)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).lstrip(".") or "_"


def prepare_clips(
    records: Sequence[ClipRecord],
    output: str | Path,
    *,
    # Output frames.
    size: int = 224,
    eye_distance: float = EYE_DISTANCE,
    eye_height: float = EYE_HEIGHT,
    image_format: str = "png",
    jpeg_quality: int = 95,
    # Detection.
    detect_frames: int = 5,
    locator: EyeLocator | None = None,
    # Reading and the run.
    backend: str = "decord",
    overwrite: bool = False,
    progress: bool = True,
    failed: Sequence[str] = (),
) -> PrepareSummary:
    """Align and write every clip of ``records`` under ``output`` (see the module doc).

    Args:
        size: side of the written square frames, in pixels.
        eye_distance, eye_height: the eyes' distance apart and their midpoint's height from the top,
            as shares of ``size`` (default: the framing of the face crop on raw recordings).
        image_format: ``png`` (lossless) or ``jpg`` (at ``jpeg_quality``).
        detect_frames: frames the face and eyes are looked for on: the onset and others spread
            over the clip; the alignment is the median of what they give.
        overwrite: prepare every clip again (needed to change the settings of an existing set).
        failed: failures found before (annotation rows that could not be read), reported with these.
    """
    from tqdm.auto import tqdm

    from mer.locks import exclusive

    settings = {
        "size": int(size),
        "eye_distance": float(eye_distance),
        "eye_height": float(eye_height),
        "image_format": str(image_format).lower().replace("jpeg", "jpg"),
        "jpeg_quality": int(jpeg_quality),
        "detect_frames": int(detect_frames),
        "detector": "opencv-haar",
    }
    _check(settings)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    folders = [clip_folder(output, r) for r in records]
    if len(set(folders)) < len(folders):
        repeated = next(str(f) for f in folders if folders.count(f) > 1)
        raise ValueError(
            f"two clips would be written to {repeated}: their subject and clip names differ only in characters not kept"
        )
    summary = PrepareSummary(failed=list(failed), output=output)
    with exclusive(output / ".lock"):  # two runs into one folder would write the same clips
        _claim(output, settings, overwrite)
        locator = locator or EyeLocator()
        for record, folder in zip(tqdm(records, desc="prepare", unit="clip", disable=not progress, dynamic_ncols=True), folders):
            if not overwrite and _done(folder, settings):
                summary.skipped.append(record.clip_id)
                continue
            try:
                aligned = _prepare_clip(record, folder, locator, settings, backend)
            except Exception as exc:  # a broken clip: one line, the batch goes on
                summary.failed.append(f"{record.clip_id} ({record.path}): {_one_line(exc)}")
                continue
            if aligned:
                summary.prepared.append(record.clip_id)
            else:
                summary.no_face.append((record.subject, record.clip_id, record.path))
        summary.table = _write_lists(output, records, folders, settings, summary)
    return summary


def _check(settings: dict) -> None:
    if settings["size"] < 16:
        raise ValueError(f"size must be >= 16 pixels, got {settings['size']}")
    for key in ("eye_distance", "eye_height"):
        if not 0 < settings[key] < 1:
            raise ValueError(f"{key} is a share of the frame's side, in (0, 1); got {settings[key]}")
    if settings["image_format"] not in IMAGE_FORMATS:
        raise ValueError(f"unknown image_format {settings['image_format']!r}; valid choices: {', '.join(IMAGE_FORMATS)}")
    if settings["detect_frames"] < 1:
        raise ValueError(f"detect_frames must be >= 1, got {settings['detect_frames']}")


def _claim(output: Path, settings: dict, overwrite: bool) -> None:
    """Record the settings in prepare.json; refuse other settings than an existing set's unless ``overwrite``."""
    path = output / SETTINGS_FILE
    if path.is_file() and not overwrite:
        before = json.loads(path.read_text())
        changed = {k: (before.get(k), v) for k, v in settings.items() if before.get(k) != v}
        if changed:
            said = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changed.items())
            raise ValueError(f"{output} was prepared with other settings ({said}): choose another output, or overwrite=true")
    path.write_text(json.dumps(settings, indent=1) + "\n")


def _done(folder: Path, settings: dict) -> bool:
    """A clip is done when its folder holds an alignment.json made with these settings."""
    try:
        return json.loads((folder / ALIGNMENT_FILE).read_text()).get("settings") == settings
    except (OSError, ValueError):
        return False


def detection_frames(record: ClipRecord, count: int) -> list[int]:
    """The onset and ``count - 1`` frames spread evenly over the clip's span (sorted, no repeats)."""
    start, stop = record.span
    spread = np.linspace(start, stop - 1, max(0, count - 1)).round().astype(int).tolist()
    return sorted({record.onset, *spread})


def _prepare_clip(record: ClipRecord, folder: Path, locator: EyeLocator, settings: dict, backend: str) -> bool:
    """Write one aligned clip into ``folder`` (through a partial folder); False when no face was found."""
    start, stop = record.span
    with open_video(record.path, backend, expected_frames=record.n_frames or None, fps=record.fps) as source:
        looked_at = detection_frames(record, settings["detect_frames"])
        found = [locator(frame) for frame in source.get_frames(looked_at)]
        alignment = clip_alignment(
            found, settings["size"], eye_distance=settings["eye_distance"], eye_height=settings["eye_height"]
        )
        if alignment is None:
            return False
        partial = folder.with_name(f".{folder.name}.partial")
        if partial.exists():  # left by a killed run
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
        pattern = "{:06d}." + settings["image_format"]
        try:
            for first in range(start, stop, CHUNK):
                frames = source.get_frames(list(range(first, min(first + CHUNK, stop))))
                aligned = [alignment.apply(f) for f in frames]
                write_frame_folder(partial, aligned, pattern=pattern, start=first - start, quality=settings["jpeg_quality"])
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    about = {
        "subject": record.subject,
        "clip": record.clip_id,
        "source_path": record.path,
        "span": [start, stop],
        "detected_on": looked_at,
        "eyes_found_on": sum(f is not None and f.from_eyes for f in found),
        "alignment": alignment.as_dict(),
        "settings": settings,
    }
    (partial / ALIGNMENT_FILE).write_text(json.dumps(about, indent=1) + "\n")
    if folder.exists():  # prepared before with other settings, or overwrite
        shutil.rmtree(folder)
    partial.rename(folder)
    return True


def _one_line(exc: BaseException) -> str:
    from mer.data.video import VideoError

    if isinstance(exc, VideoError):
        return f"{exc.reason} ({exc.path})"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, (ValueError, OSError)) else text


def _row(record: ClipRecord, folder: Path, output: Path, about: dict) -> dict:
    start, stop = record.span
    alignment = about["alignment"]
    return {
        "subject": record.subject,
        "clip": record.clip_id,
        "path": folder.relative_to(output).as_posix(),
        "onset": record.onset - start,
        "apex": "" if record.apex_estimated else record.apex - start,  # re-estimated alike from onset and offset
        "offset": record.offset - start,
        "emotion": record.emotion,
        "aus": record.au_string,
        "fps": record.fps,
        "n_frames": stop - start,
        "source_path": record.path,
        "alignment": alignment["by"],
        "angle": alignment["angle"],
        "scale": alignment["scale"],
    }


def _write_lists(output: Path, records: Sequence[ClipRecord], folders: Sequence[Path], settings: dict, summary) -> pd.DataFrame:
    """annotations.csv from every prepared clip (this run's and earlier ones'), no_face.csv, failed.txt."""
    rows = []
    for record, folder in zip(records, folders):
        if _done(folder, settings):
            rows.append(_row(record, folder, output, json.loads((folder / ALIGNMENT_FILE).read_text())))
    table = pd.DataFrame(rows, columns=list(ROW_COLUMNS))
    table.to_csv(output / "annotations.csv", index=False)
    no_face = output / "no_face.csv"
    pd.DataFrame(summary.no_face, columns=["subject", "clip", "path"]).to_csv(no_face, index=False)
    (output / "failed.txt").write_text("".join(line + "\n" for line in summary.failed))
    return table
