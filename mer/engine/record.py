"""The record of a study: one tidy table of every finished run's test figures, that outlives the run folders.

    rows = run_rows(Path("outputs/study/imbalance/ce/seed0"), study="imbalance", condition="ce", seed=0)
    record = merge_records(read_record(Path("record.csv")), pd.DataFrame(rows))
    write_record(record, Path("record.csv"))

One row per (study, condition, seed, fold, environment), ``fold`` being 0, 1, ... for the test
subjects of one fold and ``pooled`` for the test predictions of every fold pooled (the MEGC
figure). The columns (``RECORD_COLUMNS``): the figures (``uf1``, ``uar``, ``accuracy``,
``minority_recall``, ``au_f1``, ``au_f1_tuned``, ``au_auc``; fractions, empty where the run did not
measure it), the run's ``wall_seconds`` (repeated on each of its rows), where it ran (``torch``,
``cpu`` with its SIMD level, ``data``: the data set's digest, as metrics.json records them under
``environment``) and ``source`` (the run folder). The same seed in another environment is another
draw: another CPU or torch build takes other floating-point paths and ends elsewhere.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from mer.engine.metrics import classification_metrics

RECORD_COLUMNS = [
    "study",
    "condition",
    "seed",
    "fold",
    "uf1",
    "uar",
    "accuracy",
    "minority_recall",
    "au_f1",
    "au_f1_tuned",
    "au_auc",
    "wall_seconds",
    "torch",
    "cpu",
    "data",
    "source",
]
FIGURES = ["uf1", "uar", "accuracy", "minority_recall", "au_f1", "au_f1_tuned", "au_auc"]
POOLED = "pooled"
NOT_RECORDED = "not recorded (runs before 2026-11-28)"
STUDY_FILE = "study.json"  # written by mer-study into each run folder it ran: the command and its wall time


def minority_classes(metrics: dict) -> list[str]:
    """The two classes with the smallest test support (pooled over folds)."""
    return sorted(metrics["per_class"], key=lambda name: metrics["per_class"][name]["support"])[:2]


def minority_recall(metrics: dict) -> float:
    """Mean recall of the two classes with the smallest test support."""
    return float(np.mean([metrics["per_class"][name]["recall"] or 0.0 for name in minority_classes(metrics)]))


def environment_fields(metrics: dict) -> dict[str, str]:
    """``torch``, ``cpu`` (or the device, with the SIMD level torch's kernels use) and ``data`` (the
    data set's digest) from a metrics.json; empty strings for runs that did not record them."""
    env = metrics.get("environment")
    if env is None:
        return {"torch": "", "cpu": "", "data": ""}
    data = env.get("data", {})
    where = env["cpu"] or env["device"]
    if env.get("cpu_capability"):  # absent from runs that did not record it
        where += f" ({env['cpu_capability']})"
    return {"torch": env["torch"], "cpu": where, "data": data.get("synthetic_set_sha256") or data.get("annotations_sha256") or ""}


def environment_name(torch: str, cpu: str, data: str) -> str:
    """One line naming an environment: ``torch 2.15.0+cu132, AMD EPYC (AVX2), data 931c30f8cd35``."""
    if not (torch or cpu or data):
        return NOT_RECORDED
    return f"torch {torch}, {cpu}, data {(data or 'unknown')[:12]}"


def environment_key(metrics: dict) -> str:
    """The environment a metrics.json was written in, as one line (see :func:`environment_name`)."""
    return environment_name(**environment_fields(metrics))


def run_seconds(run_dir: Path) -> float | None:
    """A finished run's wall time: as mer-study timed it (study.json), else from the first to the
    last time stamp of its log; None when neither is there."""
    timed = run_dir / STUDY_FILE
    if timed.exists():
        return float(json.loads(timed.read_text())["wall_seconds"])
    stamps = []
    for log in run_dir.glob("*.log"):
        lines = log.read_text(errors="replace").splitlines()
        for line in (lines[0], lines[-1]) if lines else ():
            found = re.match(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})\]", line)
            if found:
                stamps.append(datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S").timestamp() + int(found[2]) / 1000)
    return max(stamps) - min(stamps) if len(stamps) >= 2 else None


def fold_figures(predictions: pd.DataFrame, classes: list[str], minority: list[str]) -> dict[int, dict]:
    """Per fold of a predictions.csv (its ``fold``, ``true`` and ``predicted`` columns): UF1, UAR,
    accuracy, and the mean recall of the ``minority`` classes that have test clips in the fold
    (NaN when neither has)."""
    if "fold" not in predictions.columns:
        return {}
    index = {name: k for k, name in enumerate(classes)}
    figures = {}
    for fold, part in predictions.groupby("fold"):
        true = part["true"].astype(str).map(index).to_numpy()
        pred = part["predicted"].astype(str).map(index).to_numpy()
        m = classification_metrics(true, pred, len(classes))
        recalls = [m["per_class_recall"][index[name]] for name in minority]
        recalls = [r for r in recalls if not np.isnan(r)]
        figures[int(fold)] = {
            "uf1": m["uf1"],
            "uar": m["uar"],
            "accuracy": m["accuracy"],
            "minority_recall": float(np.mean(recalls)) if recalls else np.nan,
        }
    return figures


def run_rows(run_dir: Path, *, study: str, condition: str, seed: int, tuned: bool = False) -> list[dict]:
    """The record's rows of one finished run (its metrics.json and predictions.csv): one per fold
    and one ``pooled``. Per-fold figures are those metrics.json keeps for each fold; what it does
    not keep (the recall of the two smallest classes, and the accuracy of the classical floor) is
    computed from predictions.csv, the two smallest classes being those of the pooled test set.
    ``tuned``: a run from before ``au_f1_tuned`` was recorded gets it now (its folds' best.pt on
    their validation clips; slow)."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    environment = environment_fields(metrics)
    common = {"study": study, "condition": condition, "seed": int(seed), "wall_seconds": run_seconds(run_dir)}
    common |= environment | {"source": str(run_dir.resolve())}
    au_f1_tuned = metrics.get("au_f1_tuned")
    if au_f1_tuned is None and tuned and "au_f1" in metrics:
        from mer.engine.experiment import tuned_au_f1

        au_f1_tuned = tuned_au_f1(run_dir)
    pooled = {
        "fold": POOLED,
        "uf1": metrics["uf1"],
        "uar": metrics["uar"],
        "accuracy": metrics.get("accuracy"),
        "minority_recall": minority_recall(metrics),
        "au_f1": metrics.get("au_f1"),  # FER-only models predict no AUs
        "au_f1_tuned": au_f1_tuned,
        "au_auc": metrics.get("au_auc"),
    }
    table = run_dir / "predictions.csv"
    computed = {}
    if table.exists() and metrics.get("classes"):
        computed = fold_figures(pd.read_csv(table), list(metrics["classes"]), minority_classes(metrics))
    rows = []
    for summary in metrics.get("folds", []):
        fold = int(summary["fold"])
        recorded = {name: summary.get(f"test_{name}") for name in ("uf1", "uar", "accuracy", "au_f1", "au_f1_tuned")}
        figures = {name: value for name, value in recorded.items() if value is not None}
        rows.append(common | {"fold": str(fold)} | computed.get(fold, {}) | figures)
    return [{column: row.get(column) for column in RECORD_COLUMNS} for row in [*rows, common | pooled]]


def _parse_environment(name: str) -> dict[str, str]:
    """The fields of a line of :func:`environment_name` (the first record layout kept only the line)."""
    found = re.fullmatch(r"torch (?P<torch>[^,]*), (?P<cpu>.*), data (?P<data>\S*)", name or "")
    return found.groupdict() if found else {"torch": "", "cpu": "", "data": ""}


def read_record(path: Path) -> pd.DataFrame:
    """A record CSV as a DataFrame of ``RECORD_COLUMNS`` (empty when the file does not exist).

    The first layout, written by ``tools/ablate.py --export`` (one pooled row per condition, seed and
    environment, the environment as one line), is read too: its rows become ``pooled`` rows.
    """
    if not path.exists():
        return pd.DataFrame(columns=RECORD_COLUMNS)
    table = pd.read_csv(path, dtype={"fold": str, "torch": str, "cpu": str, "data": str, "source": str}, keep_default_na=False)
    if "fold" not in table.columns:  # the first layout
        table["fold"] = POOLED
        fields = pd.DataFrame([_parse_environment(name) for name in table["environment"]], index=table.index)
        table = pd.concat([table.drop(columns=["environment"]), fields], axis=1)
    for column in RECORD_COLUMNS:
        if column not in table.columns:
            table[column] = ""
    for column in [*FIGURES, "wall_seconds"]:
        table[column] = pd.to_numeric(table[column].replace("", np.nan), errors="coerce")
    table["seed"] = table["seed"].astype(int)
    return table[RECORD_COLUMNS]


def environments(record: pd.DataFrame) -> pd.Series:
    """Each row's environment as one line (:func:`environment_name`)."""
    return pd.Series(
        [environment_name(t, c, d) for t, c, d in zip(record["torch"], record["cpu"], record["data"])],
        index=record.index,
        dtype=str,
    )


def merge_records(record: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """``record`` with ``rows`` added: a row for the same study, condition, seed, fold and
    environment replaces the one there; rows of other environments (other machines) stay."""
    if rows.empty:
        return record
    both = pd.concat([df for df in (record, rows[RECORD_COLUMNS]) if not df.empty], ignore_index=True)
    for column in [*FIGURES, "wall_seconds"]:  # a figure no run measured (AU F1 of FER-only models) is NaN, not None
        both[column] = pd.to_numeric(both[column], errors="coerce")
    both["environment"] = environments(both.fillna({"torch": "", "cpu": "", "data": ""}))
    both = both.drop_duplicates(["study", "condition", "seed", "fold", "environment"], keep="last")
    both["pooled_last"] = both["fold"] == POOLED  # each run's folds in order, then its pooled row
    both["fold_number"] = pd.to_numeric(both["fold"], errors="coerce")
    both = both.sort_values(["study", "condition", "environment", "seed", "pooled_last", "fold_number"], kind="stable")
    return both[RECORD_COLUMNS].reset_index(drop=True)


def write_record(record: pd.DataFrame, path: Path) -> Path:
    """The record as CSV (figures to 4 decimals, seconds to 0.1), written whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = record.copy()
    table[FIGURES] = table[FIGURES].astype(float).round(4)
    table["wall_seconds"] = table["wall_seconds"].astype(float).round(1)
    tmp = path.with_suffix(path.suffix + ".tmp")
    table.to_csv(tmp, index=False)
    tmp.replace(path)
    return path
