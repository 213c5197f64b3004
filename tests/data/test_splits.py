import numpy as np
import pytest

from mer.data.records import ClipRecord
from mer.data.splits import leave_one_subject_out, make_folds, subject_kfold


def make_records(n_subjects=12, per_subject=6, seed=0):
    rng = np.random.default_rng(seed)
    return [
        ClipRecord(f"s{s:02d}", f"s{s:02d}_{c}", "x.mp4", 0, 1, 2, "x", int(rng.integers(0, 4)), n_frames=3)
        for s in range(n_subjects)
        for c in range(per_subject)
    ]


def subjects(records, positions):
    return {records[i].subject for i in positions}


@pytest.mark.parametrize("protocol", ["holdout", "kfold", "loso"])
def test_no_subject_in_two_parts(protocol):
    records = make_records()
    folds = make_folds(records, protocol, folds=4, seed=3)
    assert len(folds) == {"holdout": 1, "kfold": 4, "loso": 12}[protocol]
    for fold in folds:
        train, val, test = subjects(records, fold.train), subjects(records, fold.val), subjects(records, fold.test)
        assert train and val and test
        assert not (train & val) and not (train & test) and not (val & test)
        assert len(fold.train) + len(fold.val) + len(fold.test) == len(records)


def test_kfold_tests_every_clip_once():
    records = make_records()
    tested = np.concatenate([test for _, test in subject_kfold(records, k=4)])
    assert sorted(tested.tolist()) == list(range(len(records)))
    assert len(leave_one_subject_out(records)) == 12


def test_too_few_subjects_is_a_clear_error():
    with pytest.raises(ValueError, match="5-fold needs at least 5 subjects, the data has 3"):
        subject_kfold(make_records(n_subjects=3), k=5)
