"""Calibrate the synthetic data's difficulty: a linear baseline, subject-independent.

    python tools/calibrate_synthetic.py                      # the default set (cached), 5-fold by subject
    python tools/calibrate_synthetic.py amplitude=1.5 noise=3 # other generator settings
    python tools/calibrate_synthetic.py --annotations /tmp/syn/annotations.csv

Features: the apex-minus-onset difference image (grey, downsampled to 28x28), standardised.
Model: logistic regression (scikit-learn, class-balanced), GroupKFold by subject; predictions
pooled over folds give UF1 (macro F1) and UAR (mean per-class recall) as MEGC defines them.
The goal for the default settings: well above chance (1/7) and clearly below perfect
(UF1 about 0.3-0.75). Also printed: the same model from the onset frame alone (no expression:
should be near chance) and how well a neutral frame tells subjects apart (identity is learnable,
so subject-independent splits matter). With ``--aus``: the same linear probe per AU (one
class-balanced logistic regression each, AU present or not), out-of-fold ROC AUC by subject: how
visible each AU is in the apex-onset difference, to compare with a trained model's per-AU AUC
(metrics.json ``per_au_auc``, tools/au_auc.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mer.data.formats import read_annotations
from mer.data.synthetic import ensure_dataset
from mer.data.video import open_video


def grey(frame: np.ndarray, side: int) -> np.ndarray:
    g = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return cv2.resize(g, (side, side), interpolation=cv2.INTER_AREA)


def load_features(
    annotations: Path, side: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str], list[frozenset[int]]]:
    """(difference features, onset features, labels, subjects, class names, AUs) for every clip."""
    records = read_annotations(annotations, format="dfme")
    diffs, onsets, labels, subjects, aus = [], [], [], [], []
    for r in records:
        with open_video(r.path, "pyav", expected_frames=r.n_frames, fps=r.fps) as source:
            onset, apex = source.get_frames([r.onset, r.apex])
        a, o = grey(apex, side), grey(onset, side)
        diffs.append((a - o).ravel())
        onsets.append(o.ravel())
        labels.append(r.label)
        subjects.append(r.subject)
        aus.append(r.au_numbers)
    classes = ["happiness", "sadness", "anger", "contempt", "fear", "disgust", "surprise"]
    return np.array(diffs), np.array(onsets), np.array(labels), np.array(subjects), classes, aus


def cross_validate(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray | None, folds: int, c: float, method: str = "predict"
) -> np.ndarray:
    """Out-of-fold outputs (``method`` of a class-balanced logistic regression); folds by ``groups`` (subjects) when given, else stratified."""
    splitter = GroupKFold(n_splits=folds) if groups is not None else StratifiedKFold(folds, shuffle=True, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, class_weight="balanced", max_iter=2000))
    return cross_val_predict(model, x, y, groups=groups, cv=splitter, method=method)


def au_probe_auc(x: np.ndarray, present: np.ndarray, groups: np.ndarray, folds: int, c: float) -> float:
    """Out-of-fold ROC AUC of the linear probe for one AU (present or not), folds by subject."""
    return float(roc_auc_score(present, cross_validate(x, present, groups, folds, c, method="predict_proba")[:, 1]))


def au_pixel_change(au: str, size: int, amplitude: float, subjects: int = 3) -> float:
    """Grey levels changed, summed over the frame, by one AU at full intensity on a still face
    (no nuisances), mean over the first ``subjects`` faces: how strongly the generator renders it."""
    from mer.data.synthetic.generator import subject_layers
    from mer.data.synthetic.render import Event, Nuisance, render_video

    total = 0.0
    for subject in range(subjects):
        frames = render_video(
            subject_layers(0, subject, size),
            [Event(2, 10, 20, au)],
            24,
            200.0,
            amplitude=amplitude,
            nuisance=Nuisance.none(),
            rng=np.random.default_rng(0),
        ).astype(np.float32)
        total += float(np.abs(frames[10] - frames[0]).mean(axis=-1).sum())
    return total / subjects


def scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {"uf1": float(f1_score(y, pred, average="macro")), "uar": float(balanced_accuracy_score(y, pred))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("settings", nargs="*", help="generator settings key=value (for the cached set)")
    parser.add_argument("--annotations", type=Path, help="an existing synthetic set's annotations.csv")
    parser.add_argument("--side", type=int, default=28, help="side of the downsampled difference image")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--c", type=float, default=0.01, help="inverse L2 strength of the logistic regression")
    parser.add_argument("--aus", action="store_true", help="also the per-AU linear probe's ROC AUC")
    args = parser.parse_args()

    started = time.perf_counter()
    if args.annotations is None:
        settings = dict(kv.split("=", 1) for kv in args.settings)
        from omegaconf import OmegaConf

        from mer.data.synthetic import SyntheticSettings

        typed = OmegaConf.to_container(
            OmegaConf.merge(
                OmegaConf.structured(SyntheticSettings), OmegaConf.from_dotlist([f"{k}={v}" for k, v in settings.items()])
            )
        )
        annotations = ensure_dataset(**typed)
    else:
        annotations = args.annotations
    x, onsets, y, subjects, classes, aus = load_features(annotations, args.side)
    prepared = time.perf_counter() - started

    pred = cross_validate(x, y, subjects, args.folds, args.c)
    result = scores(y, pred)
    blind = scores(y, cross_validate(onsets, y, subjects, args.folds, args.c))
    # Identity: which subject is this neutral frame? (stratified folds: every subject in training)
    _, subject_ids = np.unique(subjects, return_inverse=True)
    identity = float(
        (cross_validate(onsets, subject_ids, None, min(args.folds, np.bincount(subject_ids).min()), args.c) == subject_ids).mean()
    )

    per_class = f1_score(y, pred, average=None, labels=range(len(classes)))
    counts = np.bincount(y, minlength=len(classes))
    print(f"data: {annotations} ({len(y)} clips, {len(np.unique(subjects))} subjects; features in {prepared:.1f} s)")
    print(f"apex-onset difference, {args.side}x{args.side}, logistic regression, {args.folds}-fold by subject:")
    print(f"  UF1 {result['uf1']:.3f}  UAR {result['uar']:.3f}  (chance UAR {1 / len(classes):.3f})")
    print("  per-class F1: " + ", ".join(f"{c} {f:.2f} (n={n})" for c, f, n in zip(classes, per_class, counts)))
    print(f"onset frame only (no expression): UF1 {blind['uf1']:.3f}  UAR {blind['uar']:.3f}")
    print(f"subject identified from a neutral frame: accuracy {identity:.3f} (chance {1 / len(np.unique(subjects)):.3f})")
    meta = json.loads((Path(annotations).parent / "meta.json").read_text())
    if args.aus:
        size, amplitude = int(meta["settings"]["size"]), float(meta["settings"]["amplitude"])
        print("per AU: a linear probe on the same features, out-of-fold ROC AUC by subject (AUs in >= 5 clips),")
        print("        and the grey levels the AU changes at full intensity, summed over a still face:")
        for au in sorted(set().union(*aus)):
            present = np.array([au in a for a in aus])
            if present.sum() >= 5:
                auc = au_probe_auc(x, present, subjects, args.folds, args.c)
                print(
                    f"  AU{au}: AUC {auc:.2f} (n={int(present.sum())}), change {au_pixel_change(str(au), size, amplitude):,.0f}"
                )
    print("settings: " + " ".join(f"{k}={v}" for k, v in meta["settings"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
