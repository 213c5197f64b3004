"""The classical floor: a linear model on onset -> apex optical flow, ``mer-baseline`` / ``python -m mer.baseline``.

    mer-baseline                          # the default data and protocol of mer-train
    mer-baseline cv=kfold                 # subject-independent 5-fold, predictions pooled

For every clip: the optical flow from its onset to its apex (the same motion code and settings as
the models' flow input: ``data.motion``, head motion removed), its u, v and optical strain
averaged over a ``grid`` x ``grid`` layout of the face (area pooling), one feature vector. Per
fold: a class-balanced logistic regression (scikit-learn, features standardised) fitted on the
fold's training and validation subjects, then applied to its test subjects; one logistic
regression per AU beside it gives AU probabilities. The run folder holds what ``mer-train`` writes
(metrics.json with UF1 / UAR pooled over folds, per-AU AUC, predictions.csv, confusion_matrix.png),
so every table can show the floor beside the deep models, on the same folds.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from mer.cli import command
from mer.data.build import build_clip_dataset, build_folds, class_names, data_provenance, load_records
from mer.data.clip import ClipSpec, MotionSpec
from mer.engine.experiment import write_outputs
from mer.engine.predictions import Predictions
from mer.engine.reports import environment, named_metrics
from mer.runtime import select_device

log = logging.getLogger("mer.baseline")

ONSET_APEX = {"name": "keyframe", "num_frames": 2, "rise_share": 1.0, "context_frames": 0, "jitter": 0.0}


def flow_features(records, data_cfg, *, grid: int, num_workers: int = 0) -> np.ndarray:
    """(N, 3 * grid * grid): onset -> apex u, v and strain, area-pooled to ``grid`` x ``grid``."""
    motion = OmegaConf.to_container(data_cfg.motion, resolve=True)
    motion.pop("cache", None)
    spec = ClipSpec(
        num_frames=2,
        size=int(motion.get("size") or data_cfg.crop_size),
        representation="flow_strain",
        motion=MotionSpec(**motion),
    )
    dataset = build_clip_dataset(records, data_cfg, ONSET_APEX, train=False, spec=spec)
    loader = torch.utils.data.DataLoader(dataset, batch_size=16, num_workers=num_workers)
    features = []
    for batch in loader:
        apex = batch["clip"][:, :, 1]  # (B, 3, T=2, S, S) -> the apex's flow and strain (B, 3, S, S)
        features.append(F.adaptive_avg_pool2d(apex, grid).flatten(1).numpy())  # (B, 3 * grid^2)
    return np.concatenate(features)


def fit_predict(x_train, y_train, x_test, *, c: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (N_test, K) of a class-balanced logistic regression, and its K classes (those seen in training)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, class_weight="balanced", max_iter=5000, random_state=seed))
    return model.fit(x_train, y_train).predict_proba(x_test), model.classes_


def run(cfg: DictConfig, run_dir: Path) -> dict:
    records = load_records(cfg.data)
    names, au_list = class_names(cfg.data), [int(a) for a in cfg.data.aus]
    folds = build_folds(records, cfg.cv)
    log.info(
        "onset -> apex flow of %d clips (%s, head motion %s), pooled %d x %d",
        len(records),
        cfg.data.motion.method,
        cfg.data.motion.head_motion,
        cfg.grid,
        cfg.grid,
    )
    x = flow_features(records, cfg.data, grid=int(cfg.grid), num_workers=int(cfg.num_workers))
    y = np.array([r.label for r in records])
    aus = np.array([[1.0 if a in r.au_numbers else 0.0 for a in au_list] for r in records])
    pooled, pooled_folds, summaries = Predictions(), [], []
    for fold in folds:
        train, test = np.array(fold.train + fold.val), np.array(fold.test)
        if not len(test):
            continue
        probs = np.zeros((len(test), len(names)))
        fitted, present = fit_predict(x[train], y[train], x[test], c=float(cfg.C), seed=int(cfg.seed))
        probs[:, present] = fitted
        au_probs = np.zeros((len(test), len(au_list)))
        for k in range(len(au_list)):
            if 0 < aus[train, k].sum() < len(train):  # an AU never (or always) seen in training has no model
                au_probs[:, k] = fit_predict(x[train], aus[train, k], x[test], c=float(cfg.C), seed=int(cfg.seed))[0][:, 1]
        part = Predictions(
            clip_ids=[records[i].clip_id for i in test],
            subjects=[records[i].subject for i in test],
            true=y[test].tolist(),
            probs=probs.tolist(),
            au_true=aus[test].tolist(),
            au_probs=au_probs.tolist(),
        )
        fold_metrics = part.metrics(len(names))
        summaries.append({"fold": fold.index, "val_uf1": None, "test_uf1": fold_metrics["uf1"], "test_uar": fold_metrics["uar"]})
        pooled.extend(part)
        pooled_folds += [fold.index] * len(test)
    provenance = environment(select_device("cpu")) | {"data": data_provenance(cfg.data)}
    result = named_metrics(pooled.metrics(len(names)), names, au_list) | {
        "model": "logistic regression on onset -> apex flow and strain",
        "folds": summaries,
        "protocol": cfg.cv.protocol,
        "classes": names,
        "environment": provenance,
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    write_outputs(run_dir, result, pooled, pooled_folds, [], names, au_list, summaries)
    return result


@command("baseline")
def main(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig

    return float(run(cfg, Path(HydraConfig.get().runtime.output_dir))["uf1"])


if __name__ == "__main__":
    main()
