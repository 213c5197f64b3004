"""Conditions compared from a study's record: mean ± std over seeds, and differences paired with a reference.

    summary_table(record, "imbalance", ["ce", "cri + phased"])                   # Markdown
    paired = paired_differences(record, "ce", ["cri + phased"], predictions=read_predictions)
    paired_table(paired, "imbalance", "ce"); plot_paired(paired, "ce", Path("paired.png"))

A draw is one seed in one environment (see mer.engine.record): the seed also draws the folds, so
two conditions' runs of one draw trained and tested on the same subjects, and their difference is
paired. Three readings of the paired UF1 difference: by seed (the pooled 5-fold UF1, mean ± std
over draws), by fold (the UF1 of one fold's test subjects, mean ± std over every fold of every
draw: how noisy one split is) and a bootstrap interval over clips (resample the test clips, with
the same clips for every draw, and recompute both conditions' pooled UF1; 95% of the mean
difference over draws). The interval says how much the difference owes to which clips happen to
be in the set; it holds when it excludes zero.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no screen
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mer.engine.record import POOLED, environments  # noqa: E402

Predictions = pd.DataFrame  # one run's test clips: columns clip, true, predicted (class names)


def _mean_std(values: Sequence[float], scale: float, digits: int) -> str:
    """Mean ± population std of the values that are not NaN, times ``scale``; the value of a single
    run; "-" for none."""
    values = [scale * v for v in values if not np.isnan(v)]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


def cell(values: Sequence[float]) -> str:
    """A table cell in points: mean ± std over runs, the value of a single run, "-" for none."""
    return _mean_std(values, 100, 1)


def fraction_cell(values: Sequence[float]) -> str:
    """A fraction such as an AUC: ``0.893 ± 0.004``, "-" for none."""
    return _mean_std(values, 1, 3)


def signed_cell(values: Sequence[float]) -> str:
    """A difference in points: ``+1.5 ± 2.5`` (population std, as ``cell``)."""
    if not len(values):
        return "-"
    if len(values) == 1:
        return f"{values[0]:+.1f}"
    return f"{np.mean(values):+.1f} ± {np.std(values):.1f}"


def _draws(record: pd.DataFrame) -> pd.DataFrame:
    """The record with its ``environment`` as one line, so (seed, environment) names a draw."""
    return record.assign(environment=environments(record))


def summary_table(record: pd.DataFrame, study: str, conditions: Sequence[str], *, tuned: bool = False) -> str:
    """Per condition: pooled UF1, UAR, the recall of the two smallest classes and the AU F1 (with
    ``tuned``: also at the validation thresholds), mean ± std over draws, in points; the mean
    per-AU ROC AUC (a fraction); and the UF1 of single folds, mean ± std over every fold of every
    draw. Conditions without runs are left out."""
    head = f"| {study} | runs | UF1 | UAR | recall, 2 smallest classes | AU F1 |"
    head += " AU F1, validation thresholds |" if tuned else ""
    lines = [head + " mean per-AU AUC | UF1 of single folds |", "|---" * (8 + tuned) + "|"]
    for condition in conditions:
        own = record[record["condition"] == condition]
        pooled, folds = own[own["fold"] == POOLED], own[own["fold"] != POOLED]
        if pooled.empty:
            continue
        figures = [cell(pooled[name].tolist()) for name in ("uf1", "uar", "minority_recall", "au_f1")]
        figures += [cell(pooled["au_f1_tuned"].tolist())] if tuned else []
        figures.append(fraction_cell(pooled["au_auc"].tolist()))
        lines.append(f"| {condition} | {len(pooled)} | " + " | ".join(figures) + f" | {cell(folds['uf1'].tolist())} |")
    return "\n".join(lines)


def environment_lines(record: pd.DataFrame) -> str:
    """How many runs trained in each environment; a warning first when there is more than one."""
    pooled = record[record["fold"] == POOLED]
    counts = environments(pooled).value_counts(sort=False)
    lines = [f"{n} run(s): {name}" for name, n in counts.items()]
    if len(counts) > 1:
        lines.insert(0, "warning: these runs trained in more than one environment; a pair is one seed in one environment")
    return "\n".join(lines)


def uf1_of_confusions(confusion: np.ndarray) -> np.ndarray:
    """UF1 of confusion matrices (..., K, K) (rows: true class), as classification_metrics
    computes it: the mean F1 over the classes present in the truth or the predictions."""
    tp = np.diagonal(confusion, axis1=-2, axis2=-1)
    seen = confusion.sum(axis=-1) + confusion.sum(axis=-2)  # support + predicted = 2 tp + fp + fn
    f1 = np.divide(2 * tp, seen, out=np.zeros(seen.shape), where=seen > 0)
    present = seen > 0
    return (f1 * present).sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)


def paired_bootstrap(
    pairs: Sequence[tuple[Sequence[str], Sequence[str], Sequence[str], Sequence[str]]],
    *,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """Bootstrap interval over clips of the mean over draws of UF1(condition) - UF1(reference).

    ``pairs``: one (clip ids, true labels, condition's predictions, reference's predictions) per
    draw, the two runs' predictions paired by clip. Each resample draws clips with replacement
    from every clip of any draw, the same clips for every draw (a clip is the unit; draws are
    repeated measurements on it), and recomputes both UF1 of each draw on its resampled clips.
    Returns (the difference on all clips, low, high) as fractions.
    """
    universe = sorted({clip for ids, *_ in pairs for clip in ids})
    position = {clip: k for k, clip in enumerate(universe)}
    rng = np.random.default_rng(seed)
    picked = rng.integers(0, len(universe), size=(resamples, len(universe)))
    weights = np.zeros((resamples + 1, len(universe)))
    np.add.at(weights, (np.arange(1, resamples + 1)[:, None], picked), 1.0)
    weights[0] = 1.0  # row 0: every clip once, the observed difference
    difference = np.zeros(resamples + 1)
    for ids, true, condition, reference in pairs:
        names = sorted({*true, *condition, *reference})
        index = {name: k for k, name in enumerate(names)}
        k = len(names)
        t = np.array([index[v] for v in true])
        clip_weights = weights[:, [position[c] for c in ids]]  # (R + 1, N)
        uf1 = []
        for predicted in (condition, reference):
            cells = np.zeros((len(ids), k * k))  # one-hot of each clip's (true, predicted) cell
            cells[np.arange(len(ids)), t * k + np.array([index[v] for v in predicted])] = 1.0
            uf1.append(uf1_of_confusions((clip_weights @ cells).reshape(-1, k, k)))
        difference += (uf1[0] - uf1[1]) / len(pairs)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(difference[1:], [tail, 100 - tail])
    return float(difference[0]), float(low), float(high)


def paired_predictions(
    condition: Predictions, reference: Predictions, condition_name: str, reference_name: str
) -> tuple[list[str], list[str], list[str], list[str]]:
    """Two runs' test predictions joined by clip, as one draw of :func:`paired_bootstrap`: (clip ids,
    true labels, the condition's predictions, the reference's). Raises ValueError naming both runs
    when a clip has other true classes in the two (not the same data)."""
    both = condition.merge(reference, on="clip", suffixes=("", "_reference"))
    if (both["true"] != both["true_reference"]).any():
        raise ValueError(f"{condition_name} and {reference_name}: the same clips with other true classes; not the same data")
    return both["clip"].tolist(), both["true"].tolist(), both["predicted"].tolist(), both["predicted_reference"].tolist()


def paired_differences(
    record: pd.DataFrame,
    reference: str,
    conditions: Sequence[str],
    *,
    predictions: Callable[[str], Predictions | None] | None = None,
    resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per condition (not the reference) with runs paired with the reference's.

    Columns: ``draws`` (list of (seed, environment)), ``d_uf1`` and ``d_minority`` (per draw, in
    points), ``d_fold_uf1`` (per fold of every draw, in points), ``low``/``high`` (the bootstrap
    interval in points, NaN when no pair has both runs' predictions), ``holds`` (the interval
    excludes zero). ``predictions(source)`` gives a run's test predictions from its record
    ``source`` (None when they are gone); a draw enters the interval only with both runs'.
    """
    record = _draws(record)
    keys = ["seed", "environment"]
    pooled = record[record["fold"] == POOLED]
    folds = record[record["fold"] != POOLED]
    ref_pooled = pooled[pooled["condition"] == reference].set_index(keys)
    ref_folds = folds[folds["condition"] == reference].set_index([*keys, "fold"])
    rows = []
    for condition in conditions:
        if condition == reference:
            continue
        own = pooled[pooled["condition"] == condition].set_index(keys)
        common = [key for key in own.index if key in ref_pooled.index]
        if not common:
            continue
        d_uf1 = [100 * (own.loc[key, "uf1"] - ref_pooled.loc[key, "uf1"]) for key in common]
        d_minority = [100 * (own.loc[key, "minority_recall"] - ref_pooled.loc[key, "minority_recall"]) for key in common]
        own_folds = folds[folds["condition"] == condition].set_index([*keys, "fold"])
        fold_keys = [key for key in own_folds.index if key in ref_folds.index]
        d_fold = [100 * (own_folds.loc[key, "uf1"] - ref_folds.loc[key, "uf1"]) for key in fold_keys]
        pairs = []
        for key in common if predictions is not None else ():
            a, b = predictions(own.loc[key, "source"]), predictions(ref_pooled.loc[key, "source"])
            if a is None or b is None:
                continue
            pairs.append(paired_predictions(a, b, own.loc[key, "source"], ref_pooled.loc[key, "source"]))
        low = high = np.nan
        if pairs:
            _, low, high = (100 * v for v in paired_bootstrap(pairs, resamples=resamples, seed=seed))
        rows.append(
            {
                "condition": condition,
                "draws": common,
                "d_uf1": d_uf1,
                "d_minority": d_minority,
                "d_fold_uf1": d_fold,
                "bootstrap_draws": len(pairs),
                "low": low,
                "high": high,
                "holds": bool(low > 0 or high < 0) if pairs else None,
            }
        )
    return pd.DataFrame(
        rows, columns=["condition", "draws", "d_uf1", "d_minority", "d_fold_uf1", "bootstrap_draws", "low", "high", "holds"]
    )


def paired_table(paired: pd.DataFrame, study: str, reference: str) -> str:
    """The paired differences as Markdown, in points."""
    lines = [
        f"| {study}: minus {reference} | pairs | UF1, by seed | UF1, by fold | UF1, 95% interval over clips | holds |"
        " recall, 2 smallest classes, by seed | ahead in UF1 |",
        "|---" * 8 + "|",
    ]
    for row in paired.itertuples():
        interval = "-" if np.isnan(row.low) else f"{row.low:+.1f} to {row.high:+.1f}"
        holds = "-" if row.holds is None else ("yes" if row.holds else "no")
        ahead = f"{sum(d > 0 for d in row.d_uf1)} of {len(row.d_uf1)}"
        lines.append(
            f"| {row.condition} | {len(row.draws)} | {signed_cell(row.d_uf1)} | {signed_cell(row.d_fold_uf1)} | {interval} | "
            f"{holds} | {signed_cell(row.d_minority)} | {ahead} |"
        )
    return "\n".join(lines)


def seed_table(paired: pd.DataFrame, study: str, reference: str) -> str:
    """Each condition minus the reference, draw by draw: UF1 / recall of the 2 smallest classes, in points."""
    draws = sorted({draw for row in paired["draws"] for draw in row}, key=lambda d: (d[1], d[0]))
    several = len({environment for _, environment in draws}) > 1
    numbers = {environment: k for k, environment in enumerate(dict.fromkeys(e for _, e in draws), start=1)}
    names = [f"seed {s}" + (f", env {numbers[e]}" if several else "") for s, e in draws]
    lines = [
        f"| {study}: minus {reference} (UF1 / minority recall) | " + " | ".join(names) + " |",
        "|---" * (len(draws) + 1) + "|",
    ]
    for row in paired.itertuples():
        values = {draw: (u, m) for draw, u, m in zip(row.draws, row.d_uf1, row.d_minority)}
        cells = [f"{values[d][0]:+.1f} / {values[d][1]:+.1f}" if d in values else "-" for d in draws]
        lines.append(f"| {row.condition} | " + " | ".join(cells) + " |")
    if several:
        lines += [""] + [f"env {k}: {environment}" for environment, k in numbers.items()]
    return "\n".join(lines)


def plot_paired(paired: pd.DataFrame, reference: str, path: Path) -> Path:
    """The paired UF1 differences: a point per seed, the mean, and the bootstrap interval as a bar."""
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * max(len(paired), 1), 3.6))
    labelled = set()

    def label(name: str) -> str | None:  # each kind of mark once in the legend
        return None if name in labelled or labelled.add(name) else name

    for x, row in enumerate(paired.itertuples()):
        jitter = np.linspace(-0.12, 0.12, len(row.d_uf1)) if len(row.d_uf1) > 1 else np.zeros(1)
        ax.scatter(x + jitter, row.d_uf1, s=18, color="tab:blue", zorder=3, label=label("seeds"))
        mean = float(np.mean(row.d_uf1))
        if np.isnan(row.low):
            ax.plot([x + 0.3], [mean], "o", color="black", label=label("mean"))
            continue
        ax.errorbar(
            x + 0.3,
            mean,
            yerr=[[max(mean - row.low, 0.0)], [max(row.high - mean, 0.0)]],
            fmt="o",
            color="black",
            capsize=4,
            label=label("mean, 95% interval over clips"),
        )
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xticks(range(len(paired)), list(paired["condition"]), rotation=20, ha="right")
    ax.set_ylabel(f"UF1 minus {reference} (points)")
    ax.set_title(f"paired by seed: each condition minus {reference}", fontsize=10)
    if len(paired):
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
