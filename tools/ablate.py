"""Ablations: the same training under several conditions and seeds, summarised as mean ± std.

    python tools/ablate.py sampling [--seeds 0 1 2] [--out outputs/ablations] [-- extra overrides ...]
    python tools/ablate.py heads
    python tools/ablate.py imbalance
    python tools/ablate.py sampling --report          # only print the table of finished runs
    python tools/ablate.py imbalance --report --tuned # ... with the AU F1 at thresholds chosen on validation

Each condition x seed is one ``python -m mer.train cv=kfold ...`` run in
``<out>/<study>/<condition>/seed<k>/``; a finished run (its metrics.json exists) is not redone, so the
command can be stopped and restarted. The table gives pooled 5-fold test UF1 and UAR, the recall
of the two smallest classes (by support) and the clip-level AU F1, as mean ± std over seeds; and
the test UF1 of the single folds (mean ± std over every fold of every seed), which shows how noisy
one split is.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

STUDIES: dict[str, dict[str, list[str]]] = {
    "sampling": {  # same frame count, same model
        "keyframe": ["clip_sampler=keyframe"],
        "uniform": ["clip_sampler=uniform"],
        "random": ["clip_sampler=random"],
    },
    "heads": {
        "AU head + gates": ["model.au_head=true", "model.gate=true"],
        "FER only": ["model.au_head=false"],
        "AU head, concatenation": ["model.au_head=true", "model.gate=false"],
    },
    "imbalance": {
        "ce": ["loss=ce", "schedule=none"],
        "focal": ["loss=focal", "schedule=none"],
        "ldam + drw": ["loss=ldam", "schedule=drw"],
        "cb": ["loss=cb", "schedule=none"],
        "cri + phased": ["loss=cri", "schedule=phased"],
        # beyond the five: the phased schedule also moving the sampling to class-balanced
        "cri + phased + balanced sampling": ["loss=cri", "schedule=phased", "schedule.sampling=1.0"],
        # CRI's s = 30 cosine logits may outweigh the AU loss on the shared backbone: 3x the AU weight
        "cri + phased + AU weight 3": ["loss=cri", "schedule=phased", "loss.au_weight=3"],
    },
}
COMMON = ["cv=kfold", "cv.folds=5", "trainer.progress=false"]


def run_dir(out: Path, study: str, condition: str, seed: int) -> Path:
    return out / study / condition.replace(" ", "_").replace("+", "p").replace(",", "") / f"seed{seed}"


def cell(values: list[float]) -> str:
    """A table cell in percent: mean ± std over runs, the value of a single run, "-" for none."""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{100 * values[0]:.1f}"
    return f"{100 * np.mean(values):.1f} ± {100 * np.std(values):.1f}"


def summarise(out: Path, study: str, seeds: list[int], *, tuned: bool = False) -> str:
    """The Markdown table; ``tuned`` adds the AU F1 at per-AU thresholds chosen on validation
    (recorded by runs since the thresholds exist; for older runs chosen again by tools/au_auc.py,
    which evaluates each fold's best.pt on its validation clips)."""
    head = f"| {study} | UF1 | UAR | recall, 2 smallest classes | AU F1 |" + (" AU F1, validation thresholds |" if tuned else "")
    lines = [head + " UF1 of single folds | runs |", "|---" * (7 + tuned) + "|"]
    for condition in STUDIES[study]:
        uf1, uar, minority, au_f1, au_f1_tuned, folds = [], [], [], [], [], []
        for seed in seeds:
            path = run_dir(out, study, condition, seed) / "metrics.json"
            if not path.exists():
                continue
            m = json.loads(path.read_text())
            uf1.append(m["uf1"])
            uar.append(m["uar"])
            per_class = sorted(m["per_class"].values(), key=lambda c: c["support"])[:2]
            minority.append(np.mean([c["recall"] or 0.0 for c in per_class]))
            if "au_f1" in m:  # FER-only models predict no AUs
                au_f1.append(m["au_f1"])
                if tuned:
                    au_f1_tuned.append(m["au_f1_tuned"] if "au_f1_tuned" in m else _tuned_au_f1(path.parent))
            folds.extend(f["test_uf1"] for f in m.get("folds", []))
        if not uf1:
            continue
        # The spread of single folds' test UF1 (about 60 clips each) shows the noise of one split.
        extra = f" {cell(au_f1_tuned)} |" if tuned else ""
        lines.append(f"| {condition} | {cell(uf1)} | {cell(uar)} | {cell(minority)} | {cell(au_f1)} |{extra} {cell(folds)} | {len(uf1)} |")
    return "\n".join(lines)


def environments(out: Path, study: str, seeds: list[int]) -> str:
    """How many of the table's runs trained in each environment (torch build, CPU, the data's
    digest, as metrics.json records them): rows are comparable seed by seed only within one."""
    counts: dict[str, int] = {}
    for condition in STUDIES[study]:
        for seed in seeds:
            path = run_dir(out, study, condition, seed) / "metrics.json"
            if not path.exists():
                continue
            env = json.loads(path.read_text()).get("environment")
            if env is None:
                key = "not recorded (runs before 2026-11-28)"
            else:
                data = env.get("data", {})
                digest = data.get("synthetic_set_sha256") or data.get("annotations_sha256") or "unknown"
                key = f"torch {env['torch']}, {env['cpu'] or env['device']}, data {digest[:12]}"
            counts[key] = counts.get(key, 0) + 1
    lines = [f"{n} run(s): {key}" for key, n in counts.items()]
    if len(counts) > 1:
        lines.insert(0, "warning: the runs of this table trained in more than one environment")
    return "\n".join(lines)


def _tuned_au_f1(run: Path) -> float:
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # tools/ is not a package
    from au_auc import tuned_au_f1

    return tuned_au_f1(run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("study", choices=sorted(STUDIES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("outputs/ablations"))
    parser.add_argument("--conditions", nargs="+", default=None, help="run only these conditions, in this order (default: all)")
    parser.add_argument("--report", action="store_true", help="only print the table")
    parser.add_argument("--tuned", action="store_true", help="add the AU F1 at per-AU thresholds chosen on validation")
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.overrides = extra
    if not args.report:
        for seed in args.seeds:
            for condition in args.conditions or STUDIES[args.study]:
                if condition not in STUDIES[args.study]:
                    parser.error(f"unknown condition {condition!r} of {args.study}: choose from {sorted(STUDIES[args.study])}")
                overrides = STUDIES[args.study][condition]
                target = run_dir(args.out, args.study, condition, seed)
                if (target / "metrics.json").exists():
                    continue
                command = [sys.executable, "-m", "mer.train", *COMMON, *overrides, *args.overrides, f"seed={seed}",
                           f"cv.seed={seed}", f"hydra.run.dir={target}", "resume=true"]  # fmt: skip
                if not any(target.glob("fold*/last.pt")):
                    command.remove("resume=true")
                start = time.time()
                print(f"[{time.strftime('%H:%M:%S')}] {args.study} / {condition} / seed {seed}", flush=True)
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
                print(f"    done in {time.time() - start:.0f} s", flush=True)
    print(summarise(args.out, args.study, args.seeds, tuned=args.tuned))
    print(environments(args.out, args.study, args.seeds))


if __name__ == "__main__":
    main()
