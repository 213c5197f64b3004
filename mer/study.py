"""Studies: named conditions x seeds of 5-fold training runs, one record, paired tables: ``mer-study`` / ``python -m mer.study``.

    mer-study study=sampling seeds=[0,1,2]                       # run what is not finished, then the tables
    mer-study study=imbalance 'conditions=[ce,cri + phased]' trainer.epochs=20 clip_sampler=keyframe
    mer-study study=imbalance report=true reference=ce tuned=true    # train nothing: the tables of finished runs
    mer-study study=imbalance report=true reference=ce record=docs/evidence/imbalance_v3.csv

A study (``mer/configs/study/<name>.yaml``) names its conditions, each a list of mer-train
overrides. Each condition x seed is one ``python -m mer.train cv=kfold cv.folds=5 seed=<k>
cv.seed=<k> <condition's overrides> <the command line's mer-train overrides>`` run in
``<out>/<study>/<condition folder>/seed<k>/`` (the seed also draws the folds, so the conditions of
one seed train and test on the same subjects). A condition whose one override is ``mer.baseline``
runs the classical floor (``python -m mer.baseline``) on the same folds instead. A finished run
(its metrics.json) is not run again, and an unfinished one continues from its checkpoints, so the
same command resumes a killed study.

Every finished run is merged into one tidy record (mer.engine.record: one row per condition,
seed and fold, and the pooled folds), ``<out>/<study>/record.csv`` or ``record=``, which outlives
the run folders and gathers runs of several machines. The tables (mer.engine.compare) are made
from the record and written to ``tables.md``; with ``reference=`` the paired differences from the
reference condition and their plot, ``paired.png``.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from mer.cli import CONFIG_DIR, PartlyFailed, command, compose, one_line, override_key
from mer.engine.compare import environment_lines, paired_differences, paired_table, plot_paired, seed_table, summary_table
from mer.engine.record import POOLED, STUDY_FILE, merge_records, read_record, run_rows, write_record

log = logging.getLogger("mer.study")

BASELINE = "mer.baseline"  # a condition of this one override runs the classical floor on the same folds
PROTOCOL = ["cv=kfold", "cv.folds=5", "trainer.progress=false"]
# mer-train keys the study sets for each run: given on the command line they would be overridden
SET_BY_THE_STUDY = {"seed": "seeds=[...]", "cv": "5-fold", "cv.folds": "5-fold", "cv.seed": "seeds=[...]", "resume": "itself"}
SET_BY_THE_STUDY |= {"cv.protocol": "5-fold", "evaluate_test": "itself"}
Runner = Callable[[list[str], Path], int]  # (command, log file) -> exit code


def condition_folder(name: str) -> str:
    """The folder of a condition's runs: ``cri + phased`` -> ``cri_p_phased``."""
    return name.replace(" ", "_").replace("+", "p").replace(",", "")


@dataclass(frozen=True)
class Condition:
    name: str
    overrides: tuple[str, ...]
    minutes_per_run: float  # the guess of a run's time before any run of the study has finished

    @property
    def folder(self) -> str:
        return condition_folder(self.name)

    @property
    def is_baseline(self) -> bool:
        return self.overrides[:1] == (BASELINE,)


@dataclass(frozen=True)
class Study:
    """A study file: its name and its conditions, in file order."""

    name: str
    conditions: tuple[Condition, ...]

    @classmethod
    def from_config(cls, node: DictConfig | dict) -> Study:
        node = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
        minutes = float(node.get("minutes_per_run", 17))
        conditions = []
        for name, spec in (node.get("conditions") or {}).items():
            if isinstance(spec, dict):  # {overrides: [...], minutes_per_run: M}
                conditions.append(Condition(name, tuple(spec["overrides"]), float(spec.get("minutes_per_run", minutes))))
            else:
                conditions.append(Condition(name, tuple(spec), minutes))
        if not conditions:
            raise ValueError(f"study {node.get('name')!r} has no conditions")
        return cls(node["name"], tuple(conditions))

    def find(self, name: str) -> Condition:
        """The condition called ``name`` (or whose folder is ``name``); a ValueError naming the valid ones."""
        for condition in self.conditions:
            if name in (condition.name, condition.folder):
                return condition
        valid = ", ".join(c.name for c in self.conditions)
        raise ValueError(f"unknown condition {name!r} of study {self.name}; valid choices: {valid}")

    def pick(self, names: Sequence[str] | None) -> list[Condition]:
        """The conditions named (in that order), or all of them."""
        return list(self.conditions) if not names else [self.find(str(name)) for name in names]


def run_dir(out: Path, study: str, condition: str, seed: int) -> Path:
    return out / study / condition_folder(condition) / f"seed{seed}"


@dataclass(frozen=True)
class Run:
    condition: Condition
    seed: int
    folder: Path

    @property
    def finished(self) -> bool:
        return (self.folder / "metrics.json").exists()

    def command(self, train_overrides: Sequence[str]) -> list[str]:
        """The training (or the floor's) command line of this run."""
        seeds = [f"seed={self.seed}", f"cv.seed={self.seed}", f"hydra.run.dir={self.folder}"]
        if self.condition.is_baseline:  # no training; the same clips (data overrides) and folds
            data = [o for o in train_overrides if override_key(o).split(".")[0] == "data"]
            return [sys.executable, "-m", BASELINE, "cv=kfold", "cv.folds=5", *data, *seeds]
        resume = ["resume=true"] if any(self.folder.glob("fold*/last.pt")) else []  # a killed run continues
        return [sys.executable, "-m", "mer.train", *PROTOCOL, *self.condition.overrides, *train_overrides, *seeds, *resume]


def run_process(command: list[str], log_file: Path) -> int:
    """Run one training as a child process, its output into ``log_file``; its exit code."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a") as out:
        return subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode


def train_overrides(task: Sequence[str]) -> list[str]:
    """The command line's overrides for mer-train: all but the study's own keys (study.yaml's);
    a key the study sets for each run (seed, cv, resume) is refused."""
    own = {"study"} | {key for key in OmegaConf.load(CONFIG_DIR / "study.yaml") if key not in ("defaults", "hydra")}
    passed = [o for o in task if override_key(o).split(".")[0] not in own]
    for override in passed:
        key = override_key(override)
        if key in SET_BY_THE_STUDY:
            raise ValueError(f"{override}: {key} is set by the study for each run ({SET_BY_THE_STUDY[key]})")
    return passed


def check_runs(runs: Sequence[Run], overrides: Sequence[str]) -> None:
    """Compose each condition's config before any training, so that a wrong override is one line now."""
    for condition in dict.fromkeys(run.condition for run in runs):
        probe = Run(condition, 0, Path("unused")).command(overrides)[3:]
        name = "baseline" if condition.is_baseline else "train"
        try:
            compose(name, [o for o in probe if not o.startswith("hydra.")])
        except HydraException as exc:
            raise ValueError(f"condition {condition.name!r}: {one_line(exc)}") from exc


def finished_rows(study: Study, out: Path, *, tuned: bool) -> pd.DataFrame:
    """The record rows of every finished run of the study's conditions under ``out`` (any seed)."""
    rows = []
    for condition in study.conditions:
        for metrics in sorted((out / study.name / condition.folder).glob("seed*/metrics.json")):
            seed = metrics.parent.name.removeprefix("seed")
            if seed.isdigit():
                rows += run_rows(metrics.parent, study=study.name, condition=condition.name, seed=int(seed), tuned=tuned)
    return pd.DataFrame(rows)


def duration(minutes: float) -> str:
    hours, rest = divmod(round(minutes), 60)
    return f"{hours} h {rest} min" if hours else f"{rest} min"


def minutes_per_run(condition: Condition, study: Study, record: pd.DataFrame) -> tuple[float, str]:
    """A run's expected minutes and where the figure comes from: this condition's finished runs,
    else the study's, else the study file's guess."""
    timed = record[(record["study"] == study.name) & (record["fold"] == POOLED) & record["wall_seconds"].notna()]
    own = timed[timed["condition"] == condition.name]
    if len(own):
        return own["wall_seconds"].mean() / 60, f"the mean of its {len(own)} finished run(s)"
    if len(timed):
        return timed["wall_seconds"].mean() / 60, f"the mean of the study's {len(timed)} finished run(s)"
    return condition.minutes_per_run, f"minutes_per_run of study/{study.name}.yaml"


def plan_text(study: Study, runs: Sequence[Run], record: pd.DataFrame) -> str:
    """How many runs are to do and how long they should take."""
    todo = [run for run in runs if not run.finished]
    conditions = list(dict.fromkeys(run.condition for run in runs))
    each = {c: minutes_per_run(c, study, record) for c in conditions}
    left = sum(each[run.condition][0] for run in todo)
    whole = sum(each[run.condition][0] for run in runs)
    seeds = len(runs) // max(len(conditions), 1)
    shape = f"{len(conditions)} condition{'s' * (len(conditions) != 1)} x {seeds} seed{'s' * (seeds != 1)}"
    lines = [f"{study.name}: {len(todo)} of {len(runs)} runs to do ({shape}; {len(runs) - len(todo)} finished)"]
    if todo:
        lines.append(f"estimated time: {duration(left)} to go, {duration(whole)} for the whole study")
        lines += [f"  {c.name}: {duration(m)} a run ({basis})" for c, (m, basis) in each.items()]
    return "\n".join(lines)


def read_predictions(source: str) -> pd.DataFrame | None:
    """A run's test predictions (clip, true, predicted) from its folder, None when they are gone."""
    path = Path(str(source)) / "predictions.csv"
    if not source or not path.is_file():
        return None
    return pd.read_csv(path, usecols=["clip", "true", "predicted"], dtype=str)


def tables(cfg: DictConfig, study: Study, conditions: Sequence[Condition], record: pd.DataFrame, folder: Path) -> str:
    """The study's tables from its record (Markdown), written to ``folder/tables.md``; with a
    reference, the paired differences' plot ``folder/paired.png``."""
    names = [c.name for c in conditions]
    reference = study.find(str(cfg.reference)).name if cfg.reference is not None else None
    if reference is not None and reference not in names:
        names.insert(0, reference)
    own = record[(record["study"] == study.name) & record["condition"].isin(names)]
    if own.empty:
        return f"{study.name}: no finished run yet"
    parts = [summary_table(own, study.name, names, tuned=bool(cfg.tuned))]
    if reference is not None:
        paired = paired_differences(
            own,
            reference,
            names,
            predictions=read_predictions,
            resamples=int(cfg.bootstrap.resamples),
            seed=int(cfg.bootstrap.seed),
        )
        if paired.empty:
            parts.append(f"no condition has a run paired with {reference}'s (the same seed in the same environment)")
        else:
            parts += [paired_table(paired, study.name, reference), seed_table(paired, study.name, reference)]
            plot_paired(paired, reference, folder / "paired.png")
    parts.append(environment_lines(own))
    text = "\n\n".join(parts)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tables.md").write_text(text + "\n")
    return text


def run(cfg: DictConfig, overrides: Sequence[str] = (), *, runner: Runner = run_process) -> pd.DataFrame:
    """Run the study's unfinished runs (none with ``report=true``), keep the record, print and
    write the tables; returns the record. ``overrides``: mer-train overrides for every run;
    ``runner(command, log file) -> exit code`` runs one (a child process)."""
    study = Study.from_config(cfg.study)
    conditions = study.pick(cfg.conditions)
    if cfg.reference is not None:
        study.find(str(cfg.reference))  # before any training: a typo should not wait for the runs
    out = Path(cfg.out)
    folder = out / study.name
    record_path = Path(cfg.record) if cfg.record else folder / "record.csv"
    record = read_record(record_path)
    found = finished_rows(study, out, tuned=bool(cfg.tuned))
    if not found.empty:
        record = merge_records(record, found)
        write_record(record, record_path)
    runs = [Run(c, int(seed), run_dir(out, study.name, c.name, int(seed))) for seed in cfg.seeds for c in conditions]
    failed = []
    if not cfg.report:
        todo = [r for r in runs if not r.finished]
        print(plan_text(study, runs, record), flush=True)
        check_runs(todo, overrides)
        bar = tqdm(todo, desc=study.name, unit="run", dynamic_ncols=True)
        for this in bar:
            bar.set_postfix_str(f"{this.condition.name}, seed {this.seed}")
            command_line = this.command(overrides)
            log_file = this.folder / "stdout.log"
            start = time.time()
            code = runner(command_line, log_file)
            if code == 2 or not this.finished:
                last = log_file.read_text(errors="replace").strip().splitlines()[-1:] if log_file.exists() else []
                problem = f"{this.condition.name}, seed {this.seed}: exit code {code}: {''.join(last)} ({log_file})"
                if code == 2:  # a configuration error: every other run would meet it too
                    bar.close()
                    raise ValueError(problem)
                failed.append(problem)
                continue
            (this.folder / STUDY_FILE).write_text(json.dumps({"wall_seconds": time.time() - start, "command": command_line}))
            rows = run_rows(this.folder, study=study.name, condition=this.condition.name, seed=this.seed, tuned=bool(cfg.tuned))
            record = merge_records(record, pd.DataFrame(rows))
            write_record(record, record_path)  # after each run: a killed study keeps what it finished
        bar.close()
    print(tables(cfg, study, conditions, record, folder))
    print(f"record: {record_path}; tables: {folder / 'tables.md'}")
    if failed:
        raise PartlyFailed(f"{len(failed)} of {len(runs)} runs failed: " + "; ".join(failed))
    return record


@command("study")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    # a kill (SIGTERM) ends the running training too, not only the study; its checkpoints stay for the resume
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    run(cfg, train_overrides(list(HydraConfig.get().overrides.task)))


if __name__ == "__main__":
    main()
