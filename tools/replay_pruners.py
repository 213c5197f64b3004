r"""Replay finished unpruned searches through pruner settings: which settings would have saved the
most trial-epochs and still kept the best trial? An offline estimate, in seconds, before a search.

    python tools/replay_pruners.py /work/bench_medium/prune_seed0_none/study.db [more study.db ...]
    python tools/replay_pruners.py STUDY.db --pruners median:5:3 halving:-:2:3 hyperband:-:2:4
    python tools/replay_pruners.py STUDY.db --smooth none ema:0.5 mean:3 max   # smoothed epoch values

Each study must come from a search run with ``pruner.name=none`` (every trial reported every epoch).
Its completed trials are replayed in their order: each epoch's validation UF1 is reported to a fresh
in-memory study holding the pruner that :func:`mer.tune.build_pruner` builds from
``name:startup_trials:warmup_epochs[:reduction_factor]`` (``-`` for a setting the pruner does not
use), and the trial stops where the pruner would have cut it. Printed per study: the share of the
unpruned trial-epochs spent, ``=`` if the unpruned best trial survives (else ``!`` and how much
lower the best of the survivors is), and the mean share over the studies.

``--smooth`` asks what the pruner would have done had trials reported a smoothed curve instead of
each epoch's value: ``ema:A`` (exponential moving average, weight A on the new epoch), ``mean:K``
(mean of the last K epochs), ``max`` (best so far). Each smoothing gets its own table. (Optuna's
median pruner already judges a trial by its best value so far, against the others' values at that
epoch; halving and hyperband judge the value at the rung's epoch.)

Caveat: a real pruned search diverges from the replay after its first cut, since TPE then models
other results; the replay keeps the unpruned search's proposals. Check a choice with
``tools/bench_search.py``, on other TPE seeds than the ones it was chosen on.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from mer.tune import build_pruner

DEFAULT_GRID = [
    "median:5:3",
    "median:5:2",
    "median:3:2",
    "median:5:1",
    *(f"halving:-:{w}:{f}" for w in (1, 2, 3) for f in (2, 3, 4)),
    *(f"hyperband:-:{w}:{f}" for w in (1, 2, 3) for f in (3, 4)),
]


def unpruned_trials(path: Path) -> list[FrozenTrial]:
    storage = f"sqlite:///{path}"
    names = optuna.get_all_study_names(storage)
    if len(names) != 1:
        raise ValueError(f"{path}: expected one study, found {len(names)}: {names}")
    trials = optuna.load_study(study_name=names[0], storage=storage).get_trials(deepcopy=False)
    if any(t.state == TrialState.PRUNED for t in trials):
        raise ValueError(f"{path}: the study has pruned trials; replay a search run with pruner.name=none")
    completed = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.number)
    if not completed:
        raise ValueError(f"{path}: no completed trial to replay")
    return completed


def pruner_from_spec(spec: str, epochs: int) -> optuna.pruners.BasePruner:
    """``name:startup_trials:warmup_epochs[:reduction_factor]`` through mer.tune's own build_pruner."""
    name, startup, warmup, *factor = spec.split(":")
    return build_pruner(
        name,
        startup_trials=0 if startup == "-" else int(startup),
        warmup_epochs=int(warmup),
        reduction_factor=int(factor[0]) if factor and factor[0] != "-" else None,
        epochs=epochs,
    )


def smoothed(values: list[float], smooth: str = "none") -> list[float]:
    """An epoch curve as a trial would have reported it under ``smooth`` (none, ema:A, mean:K, max)."""
    name, _, arg = smooth.partition(":")
    if name == "none":
        return list(values)
    if name == "max":
        return [max(values[: k + 1]) for k in range(len(values))]
    if name == "mean" and arg.isdigit() and int(arg) >= 1:
        return [statistics.fmean(values[max(0, k + 1 - int(arg)) : k + 1]) for k in range(len(values))]
    weight = float(arg) if name == "ema" and arg.replace(".", "", 1).isdigit() else 0.0
    if 0 < weight <= 1:
        out = values[:1]
        for value in values[1:]:
            out.append(weight * value + (1 - weight) * out[-1])
        return out
    raise ValueError(f"unknown smoothing {smooth!r}: expected none, ema:A (0 < A <= 1), mean:K (K >= 1) or max")


def replay(trials: list[FrozenTrial], pruner: optuna.pruners.BasePruner, smooth: str = "none") -> tuple[int, FrozenTrial]:
    """Trial-epochs spent and the best trial that survives, with ``pruner`` cutting the trials on
    their epoch values smoothed by ``smooth``; a surviving trial still ends with its own value."""
    study = optuna.create_study(direction="maximize", pruner=pruner)
    spent, best = 0, None
    for unpruned in trials:
        trial, cut = study.ask(), False
        steps = sorted(unpruned.intermediate_values)
        for step, value in zip(steps, smoothed([unpruned.intermediate_values[s] for s in steps], smooth)):
            trial.report(value, step)
            spent += 1
            if trial.should_prune():
                cut = True
                break
        if cut:
            study.tell(trial, state=TrialState.PRUNED)
            continue
        study.tell(trial, unpruned.value)
        if best is None or unpruned.value > best.value:
            best = unpruned
    return spent, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("studies", type=Path, nargs="+", help="study.db of searches run with pruner.name=none")
    parser.add_argument("--pruners", nargs="+", default=DEFAULT_GRID, help="name:startup_trials:warmup_epochs[:reduction_factor]")
    parser.add_argument("--smooth", nargs="+", default=["none"], help="none, ema:A, mean:K or max; one table each")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        studies = {path: unpruned_trials(path) for path in args.studies}
        for smooth in args.smooth:
            smoothed([0.0], smooth)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    # per study: its trials, the trial-epochs they spent unpruned, their best trial and the epochs of a trial
    unpruned = [
        (
            trials,
            sum(len(t.intermediate_values) for t in trials),
            max(trials, key=lambda t: t.value),
            max(len(t.intermediate_values) for t in trials),
        )
        for trials in studies.values()
    ]
    for smooth in args.smooth:
        if len(args.smooth) > 1 or smooth != "none":
            print(f"\nepoch values smoothed: {smooth}\n")
        table(studies, unpruned, args.pruners, smooth)


def table(studies: dict[Path, list[FrozenTrial]], unpruned: list, specs: list[str], smooth: str) -> None:
    print(
        "| pruner | "
        + " | ".join(f"{p.parent.parent.name}/{p.parent.name} ({len(t)} trials)" for p, t in studies.items())
        + " | mean |"
    )
    print("|---" * (len(studies) + 2) + "|")
    for spec in specs:
        cells, shares = [], []
        for trials, full, best, epochs in unpruned:
            spent, kept = replay(trials, pruner_from_spec(spec, epochs), smooth)
            shares.append(spent / full)
            mark = (
                "=" if kept is not None and kept.number == best.number else f"! {(kept.value if kept else 0) - best.value:+.3f}"
            )
            cells.append(f"{spent / full:.0%} {mark}")
        print(f"| {spec} | " + " | ".join(cells) + f" | {statistics.mean(shares):.0%} |")


if __name__ == "__main__":
    main()
