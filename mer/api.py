"""The Python API for scoring videos: one call from videos to a table.

    import mer

    table = mer.predict("recordings/", checkpoint="outputs/train/<run>/best.pt")
    table[table.status == "ok"][["video", "apex_s", "emotion", "p_emotion", "aus"]]

    model = mer.load_model("best.onnx")              # load once, call many times
    for folder in folders:
        tables.append(mer.predict(folder, model=model))

One row per micro-expression found (or annotated): video, status (ok / no_face / no_event /
error) and reason, onset / apex / offset in frames and seconds, the spotter's score, the face box
(face_x, face_y, face_w, face_h), the emotion and its probability (``p_emotion``), a probability
per class (``p_happiness``, ...) and per AU (``p_AU04``, ...), and ``aus``, the AUs decided present
at the model's thresholds. A video with nothing to score has one row saying why. ``mer-score`` is
the same code behind a command line that writes the table to a resumable file.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    import pandas as pd

    from mer.data.records import ClipRecord
    from mer.scoring.models import ScoringModel


def load_model(checkpoint: str | Path, device: str | torch.device = "auto") -> ScoringModel:
    """A model to score with, from a training checkpoint (``.pt``) or an export (``.onnx``, ``.ts``).

    It holds its class and AU names, its per-AU thresholds and its input spec (frames, size,
    representation), so :func:`predict` builds its clips exactly as training did.
    """
    from mer.runtime import select_device
    from mer.scoring.models import load_scoring_model

    return load_scoring_model(checkpoint, select_device(str(device)))


def predict(
    videos: str | Path | Sequence[str | Path] | None = None,
    checkpoint: str | Path | None = None,
    *,
    model: ScoringModel | None = None,
    records: Sequence[ClipRecord] | None = None,
    face: bool | dict = True,
    spotting: dict | None = None,
    batch_size: int = 16,
    num_workers: int = 0,
    frames_fps: float = 30.0,
    device: str = "auto",
    cache_dir: str | Path | None = None,
    frames: bool = False,
    progress: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Spot and recognise micro-expressions in ``videos``; returns a DataFrame (see the module doc).

    Args:
        videos: a video file, a frame folder, a folder to search (recursively), a glob, a ``.txt``
            list, or a list of any of these; or None when ``records`` are given.
        checkpoint: the model's file; or pass an already loaded ``model`` (:func:`load_model`).
        records: annotated intervals to score instead of spotting (``mer.data.formats.read_annotations``).
        face: False scores the whole frame; a dict sets the face tracker (``enabled``,
            ``detect_every_s``, ``smoothing``, ``deadband``, ``margin``; docs/scoring.md).
        spotting: the spotter's settings (:class:`mer.scoring.spotting.SpottingConfig` fields).
        batch_size: clips per model call; num_workers: decoding processes (0: in this process).
        frames_fps: the frame rate of frame folders.
        cache_dir: where face tracks and candidate intervals are kept (default $MER_CACHE/score).
        frames: also return the per-frame AU table, as ``(table, frames_table)``.
    """
    import pandas as pd

    from mer.data.synthetic.cache import default_cache_dir
    from mer.scoring.inputs import find_videos
    from mer.scoring.run import RowCollector, columns, score_videos
    from mer.scoring.spotting import SpottingConfig

    if (checkpoint is None) == (model is None):
        raise ValueError("give one of checkpoint=... or model=mer.load_model(...)")
    model = model if model is not None else load_model(checkpoint, device)
    records_by_video = None
    if records is not None:
        records_by_video = defaultdict(list)
        for r in records:
            records_by_video[r.path].append(r)
        found = sorted((Path(p) for p in records_by_video), key=str)
    elif videos is None:
        raise ValueError("give the videos to score, or records=... of annotated intervals")
    else:
        found = find_videos(videos)
        if not found:
            raise FileNotFoundError(f"no video or frame folder found in {videos!r}")
    face_options = {"enabled": bool(face)} if isinstance(face, bool) else {"enabled": True, **face}
    sink = RowCollector()
    score_videos(
        found,
        model,
        sink,
        face=face_options,
        spotting=SpottingConfig(**(spotting or {})),
        cache=Path(cache_dir).expanduser() if cache_dir else default_cache_dir() / "score",
        records_by_video=records_by_video,
        batch_size=batch_size,
        num_workers=num_workers,
        frames_fps=frames_fps,
        frames=frames,
        progress=progress,
    )
    row_columns, frame_columns = columns(model)
    table = pd.DataFrame(sink.rows, columns=row_columns)
    if frames:
        return table, pd.DataFrame(sink.frame_rows, columns=frame_columns)
    return table


def spotting_metrics(
    table: pd.DataFrame,
    records: Sequence[ClipRecord],
    *,
    iou: float = 0.5,
    micro_max_s: float = 0.5,
    label_map: str | None = None,
    unannotated: str = "skip",
) -> dict:
    """The MEGC spotting metrics of :func:`predict`'s ``table`` (spotted, not ``records=``-scored)
    against annotated ``records`` of the same videos; the dict ``mer-score evaluate.spotting=true``
    writes (docs/scoring.md#evaluating-spotting).

        truth = read_annotations("long.csv", format="csv", label_map="all")  # every interval counts
        table = mer.predict(sorted({r.path for r in truth}), model=model)
        mer.spotting_metrics(table, truth, label_map="megc3")["overall"]["f1"]

    ``label_map`` maps the annotated emotions to the model's classes for the STRS analysis (as
    written without one); ``unannotated`` says what a video of the table without annotations is:
    ``"skip"`` (not evaluated) or ``"negative"`` (no expression: each spot a false positive).
    """
    from mer.scoring.spotting_eval import evaluate_table

    return evaluate_table(table, records, iou=iou, micro_max_s=micro_max_s, label_map=label_map, unannotated=unannotated)
