"""Subject-independent splits: no subject's clips on both sides of any split.

Identity leaks through faces, so a model tested on a person it trained on is flattered; every
split here is by subject. Folds are lists of record positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import GroupKFold, GroupShuffleSplit, LeaveOneGroupOut, StratifiedGroupKFold

from mer.data.records import ClipRecord


@dataclass(frozen=True)
class Fold:
    """Positions of the records in each part; ``val`` is carved from the training subjects."""

    index: int
    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]


def _arrays(records: Sequence[ClipRecord]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([r.label for r in records]), np.array([r.subject for r in records])


def subject_kfold(records: Sequence[ClipRecord], k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """k folds by subject, stratified by emotion where the subjects allow it."""
    labels, subjects = _arrays(records)
    n_subjects = len(set(subjects))
    if n_subjects < k:
        raise ValueError(f"{k}-fold needs at least {k} subjects, the data has {n_subjects}")
    counts = np.bincount(labels)
    if counts[counts > 0].min() >= k:
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    else:  # a class too rare to appear in every fold
        splitter = GroupKFold(n_splits=k)
    return [(train, test) for train, test in splitter.split(np.zeros(len(labels)), labels, subjects)]


def leave_one_subject_out(records: Sequence[ClipRecord]) -> list[tuple[np.ndarray, np.ndarray]]:
    labels, subjects = _arrays(records)
    return list(LeaveOneGroupOut().split(np.zeros(len(labels)), labels, subjects))


def subject_holdout(records: Sequence[ClipRecord], test_size: float = 0.25, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    labels, subjects = _arrays(records)
    if len(set(subjects)) < 2:
        raise ValueError("a subject-independent split needs at least 2 subjects")
    splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    return next(splitter.split(np.zeros(len(labels)), labels, subjects))


def carve_validation(
    records: Sequence[ClipRecord], train: Sequence[int], fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split training positions into (train, val) by subject, for model selection and search."""
    train = np.asarray(train)
    if fraction <= 0:
        return train, train[:0]
    sub = [records[i] for i in train]
    inner_train, inner_val = subject_holdout(sub, test_size=fraction, seed=seed)
    return train[inner_train], train[inner_val]


def make_folds(
    records: Sequence[ClipRecord],
    protocol: str = "holdout",
    *,
    folds: int = 5,
    test_size: float = 0.25,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> list[Fold]:
    """Folds for ``protocol`` in {holdout, kfold, loso}, each with a validation part by subject."""
    if protocol == "holdout":
        outer = [subject_holdout(records, test_size=test_size, seed=seed)]
    elif protocol == "kfold":
        outer = subject_kfold(records, k=folds, seed=seed)
    elif protocol == "loso":
        outer = leave_one_subject_out(records)
    else:
        raise ValueError(f"unknown protocol {protocol!r}; valid choices: holdout, kfold, loso")
    result = []
    for i, (train, test) in enumerate(outer):
        inner_train, val = carve_validation(records, train, fraction=val_fraction, seed=seed + i)
        result.append(Fold(i, tuple(int(x) for x in inner_train), tuple(int(x) for x in val), tuple(int(x) for x in test)))
    return result
