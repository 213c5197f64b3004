"""Metrics of micro-expression recognition, as MEGC defines them.

UF1 (unweighted F1) is the mean over classes of each class's F1; UAR (unweighted average recall)
the mean over classes of each class's recall. Both treat a rare class like a frequent one, which
is the point on imbalanced ME data. In cross-validation they are computed once over the test
predictions pooled across all folds, not averaged per fold. scikit-learn does the arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score, roc_auc_score

from mer.data.aus import au_code


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> dict:
    """``uf1``, ``uar``, ``accuracy``, ``per_class_recall``, ``per_class_f1``, ``confusion`` (rows: true).

    Classes absent from both truth and prediction are left out of the UF1/UAR means (their F1 and
    recall are undefined); their per-class entries are NaN.
    """
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    labels = np.arange(num_classes)
    present = np.union1d(np.unique(y_true), np.unique(y_pred)) if y_true.size else labels[:0]
    in_truth = np.isin(labels, y_true)
    f1 = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0.0)
    recall = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0.0)
    f1 = np.where(np.isin(labels, present), f1, np.nan)
    recall = np.where(in_truth, recall, np.nan)
    return {
        "uf1": float(np.nanmean(f1)) if present.size else 0.0,
        "uar": float(np.nanmean(recall)) if in_truth.any() else 0.0,
        "accuracy": float(accuracy_score(y_true, y_pred)) if y_true.size else 0.0,
        "per_class_f1": f1.tolist(),
        "per_class_recall": recall.tolist(),
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "support": np.bincount(y_true, minlength=num_classes).tolist(),
    }


def per_dataset_metrics(
    y_true: Sequence[int], y_pred: Sequence[int], datasets: Sequence[str], num_classes: int
) -> dict[str, dict]:
    """``uf1``, ``uar`` and ``clips`` of each data set's share of pooled predictions (a composite
    protocol's per-set columns: MEGC 2019 reports SMIC, CASME II and SAMM beside the full set), in
    the order the sets first appear. Each set's figures are :func:`classification_metrics` on its
    clips alone: a class neither in its truth nor in its predictions is left out of its means."""
    y_true, y_pred, datasets = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int), np.asarray(datasets)
    out = {}
    for name in dict.fromkeys(datasets.tolist()):
        mask = datasets == name
        metrics = classification_metrics(y_true[mask], y_pred[mask], num_classes)
        out[name] = {"uf1": metrics["uf1"], "uar": metrics["uar"], "clips": int(mask.sum())}
    return out


def column_f1(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """F1 of each column of boolean arrays (N, K) (``truth`` may be (N, 1)); 0 where a column has
    neither a prediction nor a positive. By hand, as f1_score would read a single column as a
    binary task with two classes."""
    tp = (predicted & truth).sum(axis=0)
    return 2 * tp / np.maximum(predicted.sum(axis=0) + truth.sum(axis=0), 1)


THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)  # candidate AU decision thresholds


def au_metrics(y_true: np.ndarray, y_score: np.ndarray, threshold: float | np.ndarray = 0.5) -> dict:
    """F1 per AU on clip-level predictions (``y_score`` probabilities (N, K)) and their mean, and
    the ROC AUC per AU and its mean.

    F1 is at ``threshold``: one value, one per AU (K,), or one per clip and AU (N, K), e.g. each
    fold's own thresholds on predictions pooled over folds. The AUC needs none: 0.5 means the score does not rank clips with the
    AU above clips without it at all, which F1 = 0 alone cannot tell from a score that ranks well
    but stays under the threshold. Means are over AUs that occur in the truth (an AU never present
    has no F1 to speak of); an AU present in every clip has no AUC either (NaN, not in the mean).
    """
    y_true = np.asarray(y_true) > 0.5
    y_score = np.asarray(y_score, dtype=float)
    y_pred = y_score >= threshold
    if y_true.size == 0:
        return {"au_f1": 0.0, "per_au_f1": [], "au_auc": float("nan"), "per_au_auc": []}
    per_au = column_f1(y_pred, y_true)
    occurs = y_true.any(axis=0)
    ranked = occurs & ~y_true.all(axis=0)  # both kinds of clip present: an AUC exists
    auc = [float(roc_auc_score(y_true[:, k], y_score[:, k])) if r else float("nan") for k, r in enumerate(ranked)]
    return {
        "au_f1": float(per_au[occurs].mean()) if occurs.any() else 0.0,
        "per_au_f1": [float(v) if o else float("nan") for v, o in zip(per_au, occurs)],
        "au_auc": float(np.nanmean(auc)) if ranked.any() else float("nan"),
        "per_au_auc": auc,
    }


def choose_au_thresholds(y_true: np.ndarray, y_score: np.ndarray, grid: Sequence[float] = THRESHOLD_GRID) -> np.ndarray:
    """Per-AU decision thresholds (K,): for each AU the value of ``grid`` with the highest F1 on
    these clips (validation clips, never test ones); ties go to the value nearest 0.5 (of two equally near, the
    lower).

    An AU without a positive clip here keeps 0.5 (any threshold gives F1 0: nothing to choose
    from). Why at all: the sigmoid of a model trained with rare positives, or under a loss that
    shrinks the shared features' scale (LDAM/CRI), ranks clips well but stays below 0.5, so F1 at
    0.5 reads a working AU as absent; the threshold that separates best on held-out clips does not.
    """
    y_true = np.asarray(y_true) > 0.5
    y_score = np.asarray(y_score, dtype=float)
    grid = np.asarray(grid, dtype=float)
    thresholds = np.full(y_true.shape[1] if y_true.ndim == 2 else 0, 0.5)
    for k in range(thresholds.size):
        if not y_true[:, k].any():
            continue
        predicted = y_score[:, k, None] >= grid[None, :]  # (N, G)
        f1 = column_f1(predicted, y_true[:, k, None])
        best = grid[np.isclose(f1, f1.max())]
        thresholds[k] = best[np.argmin(np.round(np.abs(best - 0.5), 6))]  # equally near (0.45, 0.55): the lower
    return thresholds


PROBABILITY_DECIMALS = 6  # predictions.csv and mer.score's tables write probabilities rounded to this


def present_aus(au_probs: np.ndarray, thresholds, au_names: Sequence[int]) -> list[str]:
    """The AUs decided present per clip, as codes joined by '+' (``AU04+AU07``; '' for none).

    ``au_probs`` (N, K); ``thresholds`` a number, (K,) or (N, K): the model's per-AU thresholds;
    None (a model without them): 0.5. Decided on the probabilities as the tables write them (6
    decimals), so ``p_AU04 >= threshold`` read off a table always agrees with its ``aus`` cell.
    """
    probs = np.round(np.asarray(au_probs, dtype=float), PROBABILITY_DECIMALS)
    present = probs >= np.asarray(0.5 if thresholds is None else thresholds, dtype=float)
    return ["+".join(au_code(au) for au, on in zip(au_names, row) if on) for row in present]
