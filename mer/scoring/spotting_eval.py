"""Spotting evaluated as MEGC does: spotted intervals against the annotated ones of the same video.

    report = evaluate_videos(
        {"s15_0101": [Spot(10, 24, emotion="surprise")]},
        {"s15_0101": [TrueInterval(12, 25, MICRO, emotion="surprise")]},
    )
    report["overall"]["f1"], report["micro"]["tp"], report["per_video"]["s15_0101"]["micro"], report["micro"]["strs"]

The rules (docs/scoring.md#evaluating-spotting gives the public code each one was checked against):

- IoU of two intervals with inclusive frame bounds, |A ∩ B| / |A ∪ B| in frames ([10, 19] and
  [15, 24] share 5 of 15 frames: 1/3). A spot is a true positive (TP) at IoU >= ``iou`` (0.5)
  with an annotated interval of its video.
- One to one: pairs are taken greedily from the highest IoU down (ties: the higher spot score,
  then the earlier spot), each annotated interval and each spot used at most once. Unmatched
  spots are false positives (FP), unmatched annotated intervals false negatives (FN).
- Micro- and macro-expressions are evaluated apart, each spot against the annotated intervals of
  its own type, as MEGC scores typed submissions (a spot's type is the method's; ours is its
  length, micro when offset - onset <= ``micro_max_s``); ``overall`` is the sum of the two.
- Precision, recall and F1 pooled over videos come from the summed counts, not from means of
  per-video scores; each is 0 when its denominator is.
- STRS (spot-then-recognise score, MEGC 2023) = spotting F1 x analysis F1. The analysis is the
  recognition on the TP pairs whose annotated emotion is one of the classes: per class c,
  one-vs-rest TP_c, FP_c, FN_c; P = mean of the precisions, R = mean of the recalls, analysis
  F1 = 2PR / (P + R) (the mean of the per-class F1s, UF1, is given beside it). The classes are
  those of the annotated intervals in scope.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mer.data.labels import LabelMap
    from mer.data.records import ClipRecord

MICRO, MACRO = "micro", "macro"
TYPES = (MICRO, MACRO)
MICRO_MAX_S = 0.5  # longest micro-expression, onset to offset (CAS(ME)^2, SAMM: 500 ms)


@dataclass(frozen=True)
class TrueInterval:
    """An annotated interval of a video: frame positions (inclusive), its type, and its emotion as
    a class of the recogniser (None: left out of the analysis)."""

    onset: int
    offset: int
    type: str = MICRO
    emotion: str | None = None


@dataclass(frozen=True)
class Spot:
    """A spotted interval: frame positions (inclusive), its type, the recognised emotion, and the
    spotter's score (which of two spots equally near an annotation takes it)."""

    onset: int
    offset: int
    type: str = MICRO
    emotion: str | None = None
    score: float = 0.0


def _bounds(x) -> tuple[int, int]:
    """(onset, offset) of anything with ``onset``/``offset``, an (onset, offset) pair or an (onset, apex, offset) triple."""
    if hasattr(x, "onset"):
        return int(x.onset), int(x.offset)
    return int(x[0]), int(x[-1])


def interval_iou(a, b) -> float:
    """Intersection over union of two frame intervals with inclusive bounds.

    ``a`` and ``b`` have ``onset``/``offset`` (Interval, Spot, TrueInterval) or are (onset, offset)
    or (onset, apex, offset) tuples. [10, 19] and [15, 24]: 5 frames shared of 15 -> 1/3.
    """
    (a0, a1), (b0, b1) = _bounds(a), _bounds(b)
    inter = min(a1, b1) - max(a0, b0) + 1
    if inter <= 0:
        return 0.0
    return inter / ((a1 - a0 + 1) + (b1 - b0 + 1) - inter)


def match_intervals(spots: Sequence, truth: Sequence, iou: float = 0.5) -> list[tuple[int, int]]:
    """The TP pairs (spot index, truth index): greedy from the highest IoU down, each side used once,
    IoU >= ``iou``; ties go to the higher ``score`` (when spots have one), then the earlier spot."""
    scores = [float(getattr(s, "score", 0.0) or 0.0) for s in spots]
    pairs = sorted(
        ((interval_iou(p, t), i, j) for i, p in enumerate(spots) for j, t in enumerate(truth)),
        key=lambda x: (-x[0], -scores[x[1]], x[1], x[2]),
    )
    used_spots, used_truth, matched = set(), set(), []
    for value, i, j in pairs:
        if value < iou:
            break
        if i not in used_spots and j not in used_truth:
            used_spots.add(i)
            used_truth.add(j)
            matched.append((i, j))
    return matched


def spotting_scores(tp: int, fp: int, fn: int) -> dict:
    """``{"tp", "fp", "fn", "precision", "recall", "f1"}`` from counts (0 where undefined)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1}


def evaluate_spotting(predicted: Sequence, truth: Sequence, iou: float = 0.5) -> dict:
    """The counts and scores of one video's spots against its true intervals, whatever their type
    (:func:`match_intervals`). To pool videos, sum tp/fp/fn and call :func:`spotting_scores`."""
    tp = len(match_intervals(predicted, truth, iou))
    return spotting_scores(tp, len(predicted) - tp, len(truth) - tp)


def analysis_scores(pairs: Iterable[tuple[str | None, str | None]], classes: Sequence[str]) -> dict:
    """Recognition on the TP pairs (predicted, annotated emotion), as MEGC 2023's STRS takes it.

    Pairs whose annotated emotion is not in ``classes`` are left out. Per class one-vs-rest
    TP/FP/FN; ``precision`` and ``recall`` are the means over ``classes``, ``f1`` their harmonic
    mean (the analysis F1 of STRS; ``recall`` is the UAR), ``uf1`` the mean of the per-class F1s.
    """
    kept = [(p, t) for p, t in pairs if t in classes]
    per_class = {c: spotting_scores(*_one_vs_rest(kept, c)) for c in classes}
    n = max(len(classes), 1)
    precision = sum(s["precision"] for s in per_class.values()) / n
    recall = sum(s["recall"] for s in per_class.values()) / n
    return {
        "classes": list(classes),
        "pairs": len(kept),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "uf1": sum(s["f1"] for s in per_class.values()) / n,
        "per_class": per_class,
    }


def _one_vs_rest(pairs: list[tuple[str | None, str]], c: str) -> tuple[int, int, int]:
    tp = sum(p == c and t == c for p, t in pairs)
    fp = sum(p == c and t != c for p, t in pairs)
    fn = sum(p != c and t == c for p, t in pairs)
    return tp, fp, fn


def evaluate_videos(
    spots: Mapping[str, Sequence[Spot]], truth: Mapping[str, Sequence[TrueInterval]], *, iou: float = 0.5
) -> dict:
    """Every video that is a key of ``spots`` or ``truth`` (a missing side: none), per type.

    Returns ``{"iou", "overall", "micro", "macro", "per_video": {video: {"overall", "micro", "macro"}}}``;
    each block holds tp, fp, fn, precision, recall, f1. The pooled blocks also hold ``analysis``
    and ``strs`` (None when no annotated interval in scope has an emotion among the classes).
    """
    counts = {kind: [0, 0, 0] for kind in TYPES}
    pairs: dict[str, list[tuple[Spot, TrueInterval]]] = {kind: [] for kind in TYPES}
    emotions: dict[str, set[str]] = {kind: set() for kind in TYPES}
    per_video = {}
    for video in sorted(set(spots) | set(truth)):
        mine = {}
        for kind in TYPES:
            s = [x for x in spots.get(video, ()) if x.type == kind]
            t = [x for x in truth.get(video, ()) if x.type == kind]
            matched = match_intervals(s, t, iou)
            tp, fp, fn = len(matched), len(s) - len(matched), len(t) - len(matched)
            mine[kind] = spotting_scores(tp, fp, fn)
            counts[kind] = [a + b for a, b in zip(counts[kind], (tp, fp, fn))]
            pairs[kind] += [(s[i], t[j]) for i, j in matched]
            emotions[kind] |= {x.emotion for x in t if x.emotion is not None}
        per_video[video] = {"overall": spotting_scores(*_summed(mine[k] for k in TYPES)), **mine}
    report = {"iou": iou}
    blocks = {MICRO: [MICRO], MACRO: [MACRO], "overall": list(TYPES)}
    for name, kinds in blocks.items():
        block = spotting_scores(*(sum(counts[k][i] for k in kinds) for i in range(3)))
        classes = sorted(set().union(*(emotions[k] for k in kinds)))
        analysis = None
        if classes:
            analysis = analysis_scores(((s.emotion, t.emotion) for k in kinds for s, t in pairs[k]), classes)
        block["analysis"] = analysis
        block["strs"] = block["f1"] * analysis["f1"] if analysis is not None else None
        report[name] = block
    report["per_video"] = per_video
    return report


def _summed(blocks: Iterable[dict]) -> tuple[int, int, int]:
    blocks = list(blocks)
    return tuple(sum(b[k] for b in blocks) for k in ("tp", "fp", "fn"))


# ---- from annotation records and result rows ---------------------------------------------------


def interval_type(value: object, seconds: float, micro_max_s: float = MICRO_MAX_S) -> str:
    """``micro`` or ``macro``: the annotated type when given (any case), else by length: micro
    when ``seconds`` (onset to offset) <= ``micro_max_s``."""
    if value is not None and str(value).strip():
        kind = str(value).strip().lower()
        if kind not in TYPES:
            raise ValueError(f"interval type {value!r}: expected micro or macro")
        return kind
    return MICRO if seconds <= micro_max_s + 1e-6 else MACRO


def video_key(record: ClipRecord) -> str:
    """The long video an annotated interval belongs to: the reader's ``extra["video"]`` when it
    gives one, else the record's path."""
    return str(record.extra.get("video") or Path(record.path))


def truth_from_records(
    records: Iterable[ClipRecord], *, micro_max_s: float = MICRO_MAX_S, label_map: str | LabelMap | None = None
) -> tuple[dict[str, list[TrueInterval]], dict[str, str]]:
    """The annotated intervals per video (:func:`video_key`), and each video file's key.

    ``label_map`` turns an annotated emotion into the recogniser's class (None where the map
    excludes it); without one the emotion is kept as written. An interval coded without an
    emotion (``unknown``: SAMM long videos) counts in spotting and has none for the analysis.
    Every interval of one video must come from one file, and a file must hold one video.
    """
    from mer.data.labels import UNKNOWN, get_label_map

    labels = get_label_map(label_map) if label_map is not None else None
    truth: dict[str, list[TrueInterval]] = defaultdict(list)
    key_of_path: dict[str, str] = {}
    path_of_key: dict[str, str] = {}
    for r in records:
        key, path = video_key(r), str(Path(r.path))
        if path_of_key.setdefault(key, path) != path:
            raise ValueError(f"annotated video {key!r} is in two files, {path_of_key[key]} and {path}: one video is one file")
        if key_of_path.setdefault(path, key) != key:
            raise ValueError(f"{path} holds two annotated videos, {key_of_path[path]!r} and {key!r}: one video is one file")
        emotion = None if r.emotion == UNKNOWN else r.emotion
        if labels is not None and emotion is not None:
            index = labels.index(emotion)
            emotion = None if index is None else labels.classes[index]
        kind = interval_type(r.extra.get("type"), (r.offset - r.onset) / r.fps, micro_max_s)
        truth[key].append(TrueInterval(int(r.onset), int(r.offset), kind, emotion))
    return dict(truth), key_of_path


def spots_from_rows(rows: Iterable[Mapping], *, micro_max_s: float = MICRO_MAX_S) -> tuple[dict[str, list[Spot]], dict[str, str]]:
    """The spotted intervals of a result table (``ok`` rows) per video file, and each file's status.

    A spot is micro when offset_s - onset_s <= ``micro_max_s``. Rows of annotated intervals (a
    ``clip_id``) are refused: they were not spotted.
    """
    spots: dict[str, list[Spot]] = defaultdict(list)
    status: dict[str, str] = {}
    for row in rows:
        video = str(Path(str(row["video"])))
        status.setdefault(video, str(row["status"]))
        if row["status"] != "ok":
            continue
        if _cell(row.get("clip_id")):
            raise ValueError(f"{video}: its rows are annotated intervals (clip_id {row['clip_id']!r}), not spotted ones")
        seconds = float(row["offset_s"]) - float(row["onset_s"])
        emotion = _cell(row.get("emotion")) or None
        score = float(row.get("spot_score") or 0.0)
        spots[video].append(
            Spot(int(float(row["onset"])), int(float(row["offset"])), interval_type(None, seconds, micro_max_s), emotion, score)
        )
    return dict(spots), status


def _cell(value: object) -> str:
    """A table cell as text; empty for None and NaN (CSV and Parquet write a missing cell so)."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


UNANNOTATED = ("skip", "negative")  # videos of the table without annotations: not evaluated | no expression there


def evaluate_table(
    rows: Iterable[Mapping],
    records: Iterable[ClipRecord],
    *,
    iou: float = 0.5,
    micro_max_s: float = MICRO_MAX_S,
    label_map: str | LabelMap | None = None,
    unannotated: str = "skip",
) -> dict:
    """A result table's spotted intervals (``mer.predict``'s DataFrame or mer-score's rows) against
    annotation records, video by video: :func:`evaluate_videos` plus what was left out.

    In scope: each video of the table with annotations (its file is a record's path), whatever
    its status (a failed or faceless video has no spots: its annotated intervals are FNs). A video
    of the table without annotations is left out (``unannotated="skip"``) or taken to hold no
    expression (``"negative"``: each spot an FP). Annotated videos the table lacks (another shard,
    not scored yet) are left out and listed in ``not_scored``.

    The analysis (STRS) maps annotated emotions by ``label_map`` (as written without one); it is
    left out when the table's classes (its ``p_<class>`` columns) are not the map's.
    """
    if unannotated not in UNANNOTATED:
        raise ValueError(f"unannotated={unannotated!r}: expected one of {', '.join(UNANNOTATED)}")
    rows = rows.to_dict("records") if hasattr(rows, "to_dict") else list(rows)
    truth, key_of_path = truth_from_records(records, micro_max_s=micro_max_s, label_map=label_map)
    emotions = any(t.emotion is not None for intervals in truth.values() for t in intervals)
    note = _classes_note(rows, label_map) if emotions else ""  # no emotion to analyse (SAMM-LV): nothing to explain
    if note:  # the model's classes are not the map's: no analysis
        truth = {k: [TrueInterval(t.onset, t.offset, t.type) for t in v] for k, v in truth.items()}
    spotted, status = spots_from_rows(rows, micro_max_s=micro_max_s)
    spots: dict[str, list[Spot]] = {}
    scope: dict[str, list[TrueInterval]] = {}
    path_of: dict[str, str] = {}
    left_out = []
    for path in status:
        key = key_of_path.get(path)
        if key is None and unannotated == "skip":
            left_out.append(path)
            continue
        key = key or path
        spots[key], scope[key], path_of[key] = spotted.get(path, []), truth.get(key, []), path
    result = evaluate_videos(spots, scope, iou=iou)
    per_video = {
        key: {"path": path_of[key], "status": status[path_of[key]], **block} for key, block in result["per_video"].items()
    }
    return {
        "iou": iou,
        "micro_max_s": micro_max_s,
        "unannotated": unannotated,
        "videos": len(spots),
        "failed": sorted(k for k, p in path_of.items() if status[p] == "error"),
        "not_scored": sorted(set(truth) - set(spots)),
        "unannotated_videos": sorted(left_out),
        "analysis_note": note,
        **{k: result[k] for k in ("overall", MICRO, MACRO)},
        "per_video": per_video,
    }


def table_classes(rows: Sequence[Mapping]) -> list[str] | None:
    """The model's classes in a result table: its ``p_<class>`` columns, between ``p_emotion`` and
    ``aus`` (``mer.scoring.run.columns``); None when the table does not say."""
    keys = list(rows[0]) if rows else []
    if "p_emotion" not in keys or "aus" not in keys:
        return None
    return [k[2:] for k in keys[keys.index("p_emotion") + 1 : keys.index("aus")]]


def _classes_note(rows: Sequence[Mapping], label_map: str | LabelMap | None) -> str:
    from mer.data.labels import get_label_map

    model, labels = table_classes(rows), get_label_map(label_map) if label_map is not None else None
    if model is None or labels is None or sorted(model) == sorted(labels.classes):
        return ""
    return (
        f"no analysis (STRS): the model's classes ({', '.join(model)}) are not those of the label map "
        f"{labels.name} ({', '.join(labels.classes)}); give the model's map (data.label_map=...)"
    )


def report_path(table: str | Path) -> Path:
    """Where the spotting metrics of a result table go: ``results.csv`` -> ``results.spotting.json``."""
    table = Path(table)
    return table.with_name(f"{table.stem}.spotting.json")


def write_spotting_report(
    table: str | Path, records: Sequence[ClipRecord], *, about: Mapping | None = None, **options
) -> tuple[Path, dict]:
    """Evaluate the result file ``table`` (:func:`evaluate_table` with ``options``) and write the
    report beside it as JSON (:func:`report_path`), opening with ``about`` (where the annotations
    came from); returns (its path, the report)."""
    import json

    from mer.scoring.outputs import read_rows

    report = {"table": str(table), **(about or {}), **evaluate_table(read_rows(Path(table)), records, **options)}
    path = report_path(table)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path, report


def summary_line(report: Mapping) -> str:
    """One line: the overall and per-type F1 with the overall counts, and STRS."""
    o = report["overall"]

    def strs(block: Mapping) -> str:
        return "n/a" if block["strs"] is None else f"{block['strs']:.3f}"

    return (
        f"spotting on {report['videos']} videos (IoU >= {report['iou']}): F1 {o['f1']:.3f} "
        f"(TP {o['tp']}, FP {o['fp']}, FN {o['fn']}), micro F1 {report[MICRO]['f1']:.3f}, "
        f"macro F1 {report[MACRO]['f1']:.3f}; STRS {strs(o)} (micro {strs(report[MICRO])})"
    )
