"""Per-AU ROC AUC of finished runs, from their predictions.csv and their data set's annotations.

    python tools/au_auc.py RUN_DIR [RUN_DIR ...] [--aus 4 7 14 23] [--tuned]

``--tuned`` adds the AU F1 at per-AU thresholds chosen on each fold's validation clips (what
training has recorded since the thresholds exist, ``au_f1_tuned``): read from the folds' results
when they have thresholds, else chosen again by evaluating each fold's ``best.pt`` on its
validation clips (the run's own folds, from its config), then applied to the fold's test
predictions (:func:`mer.engine.experiment.tuned_au_f1`). Test clips never choose a threshold.

A run written since ``per_au_auc`` joined metrics.json has the same figures there; this reads runs
older than that too. AU F1 at a threshold of 0.5 cannot tell a score that ranks the clips with an
AU above those without it but stays low (F1 0, AUC near 1) from a score that carries no sign of
the AU at all (F1 0, AUC 0.5); the AUC can. Each run's ``config.yaml`` names its data set (the
synthetic set is regenerated into the cache if it is missing). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from mer.data.build import load_records
from mer.engine.experiment import tuned_au_f1
from mer.engine.metrics import au_metrics


def run_auc(run_dir: Path) -> tuple[list[int], dict]:
    cfg = OmegaConf.load(run_dir / "config.yaml")
    aus = [int(a) for a in cfg.data.aus]
    truth = {r.clip_id: r.au_numbers for r in load_records(cfg.data)}
    table = pd.read_csv(run_dir / "predictions.csv")
    missing = sorted(set(table["clip"].astype(str)) - set(truth))
    if missing:
        raise SystemExit(
            f"{run_dir / 'predictions.csv'}: {len(missing)} clips not in the data set's annotations, e.g. {missing[0]}"
        )
    if f"p_AU{aus[0]:02d}" not in table.columns:
        raise SystemExit(f"{run_dir / 'predictions.csv'}: no AU probabilities (a model without the AU head?)")
    y_true = np.array([[au in truth[str(c)] for au in aus] for c in table["clip"]], dtype=float)
    y_score = table[[f"p_AU{au:02d}" for au in aus]].to_numpy(dtype=float)
    return aus, au_metrics(y_true, y_score)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders with config.yaml and predictions.csv")
    parser.add_argument("--aus", nargs="*", type=int, help="only these AUs (default: all of the run's)")
    parser.add_argument("--tuned", action="store_true", help="add the AU F1 at thresholds chosen on validation")
    args = parser.parse_args(argv)
    lines, failed = [], []
    for run in args.runs:
        try:
            if not (run / "predictions.csv").is_file():
                raise SystemExit(f"{run}: no predictions.csv (an unfinished run?)")
            aus, m = run_auc(run)
            tuned = tuned_au_f1(run) if args.tuned else None
        except (SystemExit, ValueError, FileNotFoundError) as exc:
            failed.append(str(exc))
            continue
        shown = [au for au in aus if not args.aus or au in args.aus]
        if not lines:
            extra = " AU F1 at validation thresholds |" if args.tuned else ""
            lines.append(
                "| run | " + " | ".join(f"AU{au:02d}" for au in shown) + f" | mean AUC (all AUs) | AU F1 (all AUs) |{extra}"
            )
            lines.append("|---" * (len(shown) + 3 + args.tuned) + "|")
        auc = dict(zip(aus, m["per_au_auc"]))
        cells = ["-" if np.isnan(auc[au]) else f"{auc[au]:.2f}" for au in shown]
        tail = f" {100 * tuned:.1f} |" if tuned is not None else ""
        lines.append(f"| {run} | " + " | ".join(cells) + f" | {m['au_auc']:.2f} | {100 * m['au_f1']:.1f} |{tail}")
    print("\n".join(lines))
    for message in failed:
        print(f"skipped {message}", file=sys.stderr)
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
