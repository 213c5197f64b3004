"""Ablations: the same training under several conditions and seeds, summarised as mean ± std.

    python tools/ablate.py sampling [--seeds 0 1 2] [--out outputs/ablations] [-- extra overrides ...]
    python tools/ablate.py heads
    python tools/ablate.py imbalance
    python tools/ablate.py sampling --report          # only print the table of finished runs
    python tools/ablate.py imbalance --report --tuned # ... with the AU F1 at thresholds chosen on validation
    python tools/ablate.py imbalance --report --paired ce  # ... and each condition minus ce, seed by seed
    python tools/ablate.py imbalance --report --export docs/evidence/imbalance.csv  # record the finished runs
    python tools/ablate.py imbalance --pooled docs/evidence/imbalance.csv --paired ce  # the record over machines

Each condition x seed is one ``python -m mer.train cv=kfold ...`` run in
``<out>/<study>/<condition>/seed<k>/``; a finished run (its metrics.json exists) is not redone, so the
command can be stopped and restarted. The table gives pooled 5-fold test UF1 and UAR, the recall
of the two smallest classes (by support) and the clip-level AU F1, as mean ± std over seeds; and
the test UF1 of the single folds (mean ± std over every fold of every seed), which shows how noisy
one split is. ``--paired REF`` adds each condition's difference from REF seed by seed (the seed
also draws the folds, so a pair is trained and tested on the same splits), with its mean ± std
and how many seeds agree in sign; a pair whose two runs trained in different environments is
starred, since another CPU or torch build sends the same seed down another trajectory.
``--export CSV`` keeps the finished runs' figures in a CSV record that outlives the run folders
(a study too long for one machine goes on on another); ``--pooled CSV`` reads it back, a draw being
one seed in one environment, and compares each condition with the reference in the draws both ran.
"""

from __future__ import annotations

import argparse
import csv
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
BASELINE = "mer.baseline"  # a condition of this one override runs the classical floor (mer-baseline) on the same folds
STUDIES["inputs"] = {  # what the model sees: the frames, their change, the motion (docs/results.md)
    "frames, x3d_tiny": ["model=x3d_tiny", "data.representation=frames"],
    "diff, x3d_tiny": ["model=x3d_tiny", "data.representation=diff"],
    "flow, x3d_tiny": ["model=x3d_tiny", "data.representation=flow"],
    "flow_strain, x3d_tiny": ["model=x3d_tiny", "data.representation=flow_strain"],
    "flow, frame_cnn": [
        "model=frame_cnn",
        "data.representation=flow",
        "clip_sampler=onset_apex",
        "data.crop_size=56",
        "data.motion.size=112",
    ],
    "ststnet": ["+experiment=ststnet"],
    "off_apexnet": ["+experiment=off_apexnet"],
    "linear floor": [BASELINE],
    "flow tvl1, frame_cnn": [
        "model=frame_cnn",
        "data.representation=flow",
        "clip_sampler=onset_apex",
        "data.crop_size=56",
        "data.motion.size=112",
        "data.motion.method=tvl1",
    ],
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


def check_condition(study: str, condition: str) -> None:
    """ValueError naming the study's conditions unless ``condition`` is one of them."""
    if condition not in STUDIES[study]:
        raise ValueError(f"unknown condition {condition!r} of {study}: choose from {sorted(STUDIES[study])}")


def load_run(out: Path, study: str, condition: str, seed: int) -> dict | None:
    """A finished run's metrics.json, None while it is not finished."""
    path = run_dir(out, study, condition, seed) / "metrics.json"
    return json.loads(path.read_text()) if path.exists() else None


def minority_recall(metrics: dict) -> float:
    """Mean recall of the two classes with the smallest test support."""
    smallest = sorted(metrics["per_class"].values(), key=lambda c: c["support"])[:2]
    return float(np.mean([c["recall"] or 0.0 for c in smallest]))


def environment_key(metrics: dict) -> str:
    """torch build, CPU (or device) and the data's digest, as metrics.json records them."""
    env = metrics.get("environment")
    if env is None:
        return "not recorded (runs before 2026-11-28)"
    data = env.get("data", {})
    digest = data.get("synthetic_set_sha256") or data.get("annotations_sha256") or "unknown"
    where = env["cpu"] or env["device"]
    if env.get("cpu_capability"):  # absent from runs that did not record it
        where += f" ({env['cpu_capability']})"
    return f"torch {env['torch']}, {where}, data {digest[:12]}"


def summarise(out: Path, study: str, seeds: list[int], *, tuned: bool = False) -> str:
    """The Markdown table; ``tuned`` adds the AU F1 at per-AU thresholds chosen on validation
    (recorded by runs since the thresholds exist; for older runs chosen again by tools/au_auc.py,
    which evaluates each fold's best.pt on its validation clips)."""
    head = f"| {study} | UF1 | UAR | recall, 2 smallest classes | AU F1 |" + (" AU F1, validation thresholds |" if tuned else "")
    lines = [head + " UF1 of single folds | runs |", "|---" * (7 + tuned) + "|"]
    for condition in STUDIES[study]:
        uf1, uar, minority, au_f1, au_f1_tuned, folds = [], [], [], [], [], []
        for seed in seeds:
            m = load_run(out, study, condition, seed)
            if m is None:
                continue
            uf1.append(m["uf1"])
            uar.append(m["uar"])
            minority.append(minority_recall(m))
            if "au_f1" in m:  # FER-only models predict no AUs
                au_f1.append(m["au_f1"])
                if tuned:
                    run = run_dir(out, study, condition, seed)
                    au_f1_tuned.append(m["au_f1_tuned"] if "au_f1_tuned" in m else _tuned_au_f1(run))
            folds.extend(f["test_uf1"] for f in m.get("folds", []))
        if not uf1:
            continue
        # The spread of single folds' test UF1 (about 60 clips each) shows the noise of one split.
        extra = f" {cell(au_f1_tuned)} |" if tuned else ""
        lines.append(
            f"| {condition} | {cell(uf1)} | {cell(uar)} | {cell(minority)} | {cell(au_f1)} |{extra} {cell(folds)} | {len(uf1)} |"
        )
    return "\n".join(lines)


def environments(out: Path, study: str, seeds: list[int]) -> str:
    """How many of the table's runs trained in each environment (torch build, CPU, the data's
    digest, as metrics.json records them): rows are comparable seed by seed only within one."""
    counts: dict[str, int] = {}
    for condition in STUDIES[study]:
        for seed in seeds:
            m = load_run(out, study, condition, seed)
            if m is not None:
                key = environment_key(m)
                counts[key] = counts.get(key, 0) + 1
    lines = [f"{n} run(s): {key}" for key, n in counts.items()]
    if len(counts) > 1:
        lines.insert(0, "warning: the runs of this table trained in more than one environment")
    return "\n".join(lines)


def paired(out: Path, study: str, seeds: list[int], reference: str) -> str:
    """Each condition minus ``reference`` seed by seed (UF1 / recall of the 2 smallest classes, in
    points), the mean ± std of the differences and the seeds where the condition is ahead in UF1;
    ``*`` marks a pair trained in two environments."""
    check_condition(study, reference)
    references = {seed: load_run(out, study, reference, seed) for seed in seeds}
    head = f"| {study}, minus {reference} (UF1 / minority recall) |" + "".join(f" seed {k} |" for k in seeds)
    lines = [head + " mean ± std | ahead in UF1 |", "|---" * (len(seeds) + 3) + "|"]
    mixed = False
    for condition in STUDIES[study]:
        if condition == reference:
            continue
        cells, d_uf1, d_minority = [], [], []
        for seed in seeds:
            a, b = load_run(out, study, condition, seed), references[seed]
            if a is None or b is None:
                cells.append("-")
                continue
            d_uf1.append(100 * (a["uf1"] - b["uf1"]))
            d_minority.append(100 * (minority_recall(a) - minority_recall(b)))
            star = "*" if environment_key(a) != environment_key(b) else ""
            mixed |= bool(star)
            cells.append(f"{d_uf1[-1]:+.1f} / {d_minority[-1]:+.1f}{star}")
        if not d_uf1:
            continue
        mean = f"{np.mean(d_uf1):+.1f} ± {np.std(d_uf1):.1f} / {np.mean(d_minority):+.1f} ± {np.std(d_minority):.1f}"
        ahead = f"{sum(d > 0 for d in d_uf1)} of {len(d_uf1)}"
        lines.append(f"| {condition} | " + " | ".join(cells) + f" | {mean} | {ahead} |")
    if mixed:
        lines.append("\n* the two runs of this pair trained in different environments (torch build, CPU or data)")
    return "\n".join(lines)


RECORD = ["study", "condition", "seed", "environment", "uf1", "uar", "minority_recall", "au_f1", "source"]


def export(out: Path, study: str, seeds: list[int], path: Path) -> int:
    """Merge the finished runs' figures into the CSV ``path`` (one row per study, condition, seed
    and environment; a row already there for the same four is replaced, other rows are kept), so
    that a study spread over machines and sessions keeps its runs after their folders are gone.
    Returns the number of rows written from ``out``."""
    rows = {}
    if path.exists():
        with path.open(newline="") as f:
            rows = {(r["study"], r["condition"], r["seed"], r["environment"]): r for r in csv.DictReader(f)}
    written = 0
    for condition in STUDIES[study]:
        for seed in seeds:
            m = load_run(out, study, condition, seed)
            if m is None:
                continue
            row = {
                "study": study,
                "condition": condition,
                "seed": str(seed),
                "environment": environment_key(m),
                "uf1": f"{m['uf1']:.4f}",
                "uar": f"{m['uar']:.4f}",
                "minority_recall": f"{minority_recall(m):.4f}",
                "au_f1": f"{m['au_f1']:.4f}" if "au_f1" in m else "",
                "source": f"tools/ablate.py --export, {run_dir(out, study, condition, seed)}",
            }
            rows[(study, condition, str(seed), row["environment"])] = row
            written += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RECORD)
        writer.writeheader()
        writer.writerows(sorted(rows.values(), key=lambda r: (r["study"], r["environment"], r["condition"], int(r["seed"]))))
    return written


def pooled(path: Path, study: str, reference: str) -> str:
    """The runs recorded in the CSV ``path`` pooled over environments: a draw is one seed in one
    environment (another CPU or torch build sends the same seed down another path), and each
    condition is compared with ``reference`` in the draws where both ran. UF1 and minority recall
    in points, mean ± std over the draws; the differences, their mean ± std and the draws where the
    condition is ahead in UF1."""
    check_condition(study, reference)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such record (write it with --export)")
    with path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["study"] == study]
    runs = {(r["condition"], r["environment"], r["seed"]): r for r in rows}
    lines = [
        f"| {study}, pooled over environments | draws | UF1 | recall, 2 smallest classes | minus {reference}: pairs | UF1 | minority recall | ahead in UF1 |",
        "|---" * 8 + "|",
    ]
    for condition in STUDIES[study]:
        own = [r for r in rows if r["condition"] == condition]
        if not own:
            continue
        uf1 = [float(r["uf1"]) for r in own]
        minority = [float(r["minority_recall"]) for r in own]
        d_uf1, d_minority = [], []
        for r in own:
            ref = runs.get((reference, r["environment"], r["seed"]))
            if condition != reference and ref is not None:
                d_uf1.append(100 * (float(r["uf1"]) - float(ref["uf1"])))
                d_minority.append(100 * (float(r["minority_recall"]) - float(ref["minority_recall"])))
        if d_uf1:
            diffs = f"{len(d_uf1)} | {np.mean(d_uf1):+.1f} ± {np.std(d_uf1):.1f} | {np.mean(d_minority):+.1f} ± {np.std(d_minority):.1f} | {sum(d > 0 for d in d_uf1)} of {len(d_uf1)}"
        else:
            diffs = "- | - | - | -"
        lines.append(f"| {condition} | {len(own)} | {cell(uf1)} | {cell(minority)} | {diffs} |")
    environments_seen = sorted({r["environment"] for r in rows})
    lines.append("")
    lines += [f"environment: {e}" for e in environments_seen]
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
    parser.add_argument("--paired", metavar="REF", help="add each condition minus REF, seed by seed")
    parser.add_argument("--export", type=Path, metavar="CSV", help="merge the finished runs' figures into this CSV record")
    parser.add_argument(
        "--pooled",
        type=Path,
        metavar="CSV",
        help="only print the runs of this CSV record pooled over environments (with --paired REF: minus REF)",
    )
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.overrides = extra
    try:  # before any training: a typo should not wait for the runs
        for condition in (args.conditions or []) + ([args.paired] if args.paired is not None else []):
            check_condition(args.study, condition)
    except ValueError as error:
        parser.error(str(error))
    if args.pooled is not None:
        try:
            print(pooled(args.pooled, args.study, args.paired or next(iter(STUDIES[args.study]))))
        except (FileNotFoundError, ValueError) as error:
            parser.error(str(error))
        return
    if not args.report:
        for seed in args.seeds:
            for condition in args.conditions or STUDIES[args.study]:
                overrides = STUDIES[args.study][condition]
                target = run_dir(args.out, args.study, condition, seed)
                if (target / "metrics.json").exists():
                    continue
                if overrides[:1] == [BASELINE]:  # the classical floor: no training, the same folds
                    command = [
                        sys.executable,
                        "-m",
                        BASELINE,
                        "cv=kfold",
                        "cv.folds=5",
                        f"seed={seed}",
                        f"cv.seed={seed}",
                        f"hydra.run.dir={target}",
                    ]
                else:
                    command = [
                        sys.executable,
                        "-m",
                        "mer.train",
                        *COMMON,
                        *overrides,
                        *args.overrides,
                        f"seed={seed}",
                        f"cv.seed={seed}",
                        f"hydra.run.dir={target}",
                        "resume=true",
                    ]
                if not any(target.glob("fold*/last.pt")) and "resume=true" in command:
                    command.remove("resume=true")
                start = time.time()
                print(f"[{time.strftime('%H:%M:%S')}] {args.study} / {condition} / seed {seed}", flush=True)
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
                print(f"    done in {time.time() - start:.0f} s", flush=True)
    print(summarise(args.out, args.study, args.seeds, tuned=args.tuned))
    if args.paired is not None:
        print("\n" + paired(args.out, args.study, args.seeds, args.paired))
    print(environments(args.out, args.study, args.seeds))
    if args.export is not None:
        print(f"{export(args.out, args.study, args.seeds, args.export)} run(s) merged into {args.export}")


if __name__ == "__main__":
    main()
