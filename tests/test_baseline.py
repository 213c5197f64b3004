"""mer-baseline: the classical floor writes what mer-train writes, on the same folds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mer.cli import compose
from mer.data.build import build_folds, load_records
from mer.data.synthetic import generate


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    # large enough amplitude that onset -> apex flow separates the classes even on 16 subjects
    settings = dict(n_subjects=16, clips_per_subject=7, size=64, clip_seconds=0.25, amplitude=4.0, imbalance=2.0, seed=3)
    return generate(tmp_path_factory.mktemp("data"), workers=2, **settings)


def test_the_floor_writes_a_run_folder_on_the_training_folds(small_set, tmp_path):
    from mer.baseline import run

    data = ["data=dfme", f"data.annotations={small_set}", f"data.cache_dir={tmp_path / 'cache'}"]
    cfg = compose("baseline", [*data, "cv=kfold", "cv.folds=4", "grid=8", "num_workers=0"])
    result = run(cfg, tmp_path / "run")
    for name in ("config.yaml", "metrics.json", "predictions.csv", "confusion_matrix.png"):
        assert (tmp_path / "run" / name).stat().st_size > 0, name
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["uf1"] == pytest.approx(result["uf1"]) and len(metrics["folds"]) == 4 and "per_au_auc" in metrics
    # every clip tested once, on the folds mer-train builds from the same cv config
    table = pd.read_csv(tmp_path / "run" / "predictions.csv")
    records = load_records(cfg.data)
    folds = build_folds(records, cfg.cv)
    expected = {records[i].clip_id: f.index for f in folds for i in f.test}
    assert dict(zip(table["clip"], table["fold"])) == expected
    # a linear model on the flow sees the expressions: well above chance (1/7) on clips of unseen subjects
    assert result["uf1"] > 0.4 and result["au_auc"] > 0.7
    probs = table.filter(regex="^p_(?!AU)").to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
