r"""Retrain finished search trials with other training seeds: is the best trial better, or luckier?

    python tools/retrain_trials.py outputs/tune/mer-sampling --seeds 0 1 2 3          # the best trial
    python tools/retrain_trials.py SEARCH_A:6 SEARCH_B:1 --seeds 0-7 --out /tmp/recheck

Each ``SEARCH_DIR[:TRIAL]`` (default: the search's best trial) is retrained with every seed on
the search's own split (the same training and validation subjects, ``evaluate_test=false``: the
test subjects stay unseen) through the trial's own overrides plus ``seed=<k>``. Printed: each
trial's validation UF1 by seed, mean ± std, and its difference from the first trial paired by
seed (mean ± standard error). Two searches compared this way must share the data and split
settings (e.g. the same search run with and without pruning); that is checked.

Trials are retrained as the search trained them, even after a default changed: the loss, schedule
and sampler the search ran with (its saved ``.hydra/config.yaml``) are named explicitly, and any
other setting whose default moved since is an error naming it, before anything is trained.

The retrained runs go to ``--out`` (default ``<first search>/retrained``) with their values in
``results.json``; a run already there is not redone, so the command can be stopped and rerun with
more seeds. With deterministic training the trial's own seed reproduces its search value.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import optuna
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from mer.cli import override_key
from mer.data.build import load_records
from mer.engine.experiment import run as train_run
from mer.tune import CONFIGS, base_overrides, default_storage_url, search_split


def parse_seeds(items: list[str]) -> list[int]:
    """``0 3 5-7`` -> [0, 3, 5, 6, 7]."""
    seeds = []
    for item in items:
        low, _, high = item.partition("-")
        seeds += list(range(int(low), int(high or low) + 1))
    return sorted(set(seeds))


PINNED_GROUPS = ("model", "loss", "schedule", "clip_sampler")  # config groups whose default a search's trials inherit


def flat(config, prefix: str = "") -> dict:
    """A config (or a part of one) as {dotted key: value}."""
    items = config.items() if isinstance(config, dict) else []
    out = {}
    for key, value in items:
        out.update(flat(value, f"{prefix}{key}.") if isinstance(value, dict) and value else {f"{prefix}{key}": value})
    return out


def drift(saved, composed) -> list[str]:
    """Keys of the training config (``composed``) whose value differs from the search's ``saved`` one."""
    a = flat(OmegaConf.to_container(saved, resolve=True))
    b = flat(OmegaConf.to_container(composed, resolve=True))
    return [
        f"{k}: {a.get(k)!r} -> {b.get(k)!r}"
        for k in sorted(set(b) | {k for k in a if k.split(".")[0] in composed})
        if k.split(".")[0] not in ("seed", "resume") and a.get(k) != b.get(k)
    ]


class Search:
    """A finished search folder: its command-line overrides, study and trials."""

    def __init__(self, spec: str) -> None:
        path, sep, number = spec.rpartition(":")
        if not sep or not number.isdigit():
            path, number = spec, ""
        self.dir = Path(path)
        hydra_file = self.dir / ".hydra" / "hydra.yaml"
        if not hydra_file.exists():
            raise ValueError(f"{self.dir}: not a mer.tune search folder (no .hydra/hydra.yaml)")
        hydra_cfg = OmegaConf.load(hydra_file).hydra
        overrides = hydra_cfg.overrides
        choices = hydra_cfg.runtime.choices  # the option of each config group, as Hydra chose it
        config = OmegaConf.load(self.dir / ".hydra" / "config.yaml")
        self.saved = config  # the configuration the search ran with, defaults resolved then
        self.base = base_overrides(list(overrides.hydra), list(overrides.task))  # as mer.tune gave its trials
        # the defaults may have moved since the search ran: the groups the
        # search trained with are named explicitly unless the command line chose them
        chosen = {override_key(o) for o in self.base}
        self.base = [
            f"{group}={choices[group]}" for group in PINNED_GROUPS if group not in chosen and group in choices
        ] + self.base
        storage = config.get("storage") or default_storage_url(self.dir)
        study = optuna.load_study(study_name=config.study_name, storage=storage)
        finished = {t.number: t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))}
        if not finished:
            raise ValueError(f"{self.dir}: the study {config.study_name!r} has no completed trial")
        self.trial = finished[int(number)] if number and int(number) in finished else None
        if number and self.trial is None:
            raise ValueError(f"{self.dir}: no completed trial {number} (completed: {', '.join(map(str, sorted(finished)))})")
        self.trial = self.trial or max(finished.values(), key=lambda t: t.value)
        self.label = f"{self.dir.name}:{self.trial.number}"

    def training_overrides(self, seed: int) -> list[str]:
        return [*self.base, *self.trial.user_attrs["overrides"], "evaluate_test=false", "resume=false", f"seed={seed}"]


def retrain(searches: list[Search], seeds: list[int], out: Path) -> dict[str, dict[int, float]]:
    """Validation UF1 of every search's trial at every seed, {label: {seed: value}}, resumed from ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    done_file = out / "results.json"
    done = json.loads(done_file.read_text()) if done_file.exists() else {}
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        splits = []  # every search's split first, so a mismatch stops the command before any training
        for search in searches:
            cfg = compose(config_name="train", overrides=search.base)  # the data and cv settings the split is made of
            changed = drift(search.saved, cfg)
            if changed:
                raise ValueError(
                    f"{search.dir}: the defaults changed since this search ({'; '.join(changed[:3])}); "
                    "its trials cannot be retrained as they were"
                )
            records, fold, _ = search_split(load_records(cfg.data), cfg)
            splits.append((records, fold))
            if ([r.path for r in records], fold) != ([r.path for r in splits[0][0]], splits[0][1]):
                raise ValueError(
                    f"{search.dir}: its split differs from {searches[0].dir}'s; compare trials of searches on the same data and split"
                )
        for search, (records, fold) in zip(searches, splits):
            for seed in seeds:
                label = f"{search.label}:{seed}"
                if label in done:
                    continue
                cfg = compose(config_name="train", overrides=search.training_overrides(seed))
                folder = out / f"{search.dir.name}_t{search.trial.number:04d}_s{seed}"
                done[label] = float(train_run(cfg, folder, records=records, folds=[fold])["val_uf1"])
                done_file.write_text(json.dumps(done, indent=1))
    return {s.label: {seed: done[f"{s.label}:{seed}"] for seed in seeds} for s in searches}


def report(searches: list[Search], values: dict[str, dict[int, float]]) -> str:
    seeds = sorted(next(iter(values.values())))
    lines = [
        "| trial | search value | "
        + " | ".join(f"seed {s}" for s in seeds)
        + " | mean ± std | paired difference from the first ± s.e. |",
        "|---" * (len(seeds) + 4) + "|",
    ]
    first = values[searches[0].label]
    for search in searches:
        row = values[search.label]
        mean = f"{statistics.fmean(row.values()):.3f}" + (f" ± {statistics.stdev(row.values()):.3f}" if len(row) > 1 else "")
        diffs = [row[s] - first[s] for s in seeds]
        paired = (
            "-"
            if search is searches[0]
            else (
                f"{statistics.fmean(diffs):+.3f} ± {statistics.stdev(diffs) / len(diffs) ** 0.5:.3f}"
                if len(diffs) > 1
                else f"{diffs[0]:+.3f}"
            )
        )
        lines.append(
            f"| {search.label} | {search.trial.value:.3f} | "
            + " | ".join(f"{row[s]:.3f}" for s in seeds)
            + f" | {mean} | {paired} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("searches", nargs="+", help="SEARCH_DIR[:TRIAL] (default trial: the best)")
    parser.add_argument("--seeds", nargs="+", default=["0-2"], help="training seeds: 0 1 2 or 0-7")
    parser.add_argument("--out", type=Path, help="where the retrained runs go (default: <first search>/retrained)")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        searches = [Search(spec) for spec in args.searches]
        values = retrain(searches, parse_seeds(args.seeds), args.out or searches[0].dir / "retrained")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report(searches, values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
