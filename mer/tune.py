"""Hyperparameter search with Optuna: ``python -m mer.tune search=sampling n_trials=40``.

Every trial is a ``mer.train`` run (the same :func:`mer.train.run`, the same config tree, so any
``mer.train`` override applies to a search too) on the search subjects only:

    all subjects ── test subjects (cv.test_size): never seen by any trial
                └── search subjects ── train subjects: fit
                                    └── validation subjects (cv.val_fraction): the trial's score,
                                        reported every epoch so the pruner can stop bad trials early

When the study has its ``n_trials``, the best configuration is retrained on the search subjects and
evaluated once on the test subjects; that figure is reported apart from the validation score.

The study lives in ``storage`` (default: an SQLite file in the search folder,
``outputs/tune/<study_name>/study.db``): running the same command again continues it, and any
number of processes or machines given the same storage URL share its trials.

What counts toward ``n_trials``: complete and pruned trials, and failed ones that were not
retried. A trial whose process was killed stays "running" in the storage; once its heartbeat is
3 x ``heartbeat_seconds`` old, the next worker to join the study (or to start a trial) marks it
failed and Optuna's retry callback queues a copy with the same parameters, run before any new
trial. The killed trial then does not count, its copy does; a copy killed too is not retried
again and counts as a failure. A trial that raised (NaN, out of memory, an impossible
combination) is not retried and counts, so a space with impossible corners still ends. A trial
that would train exactly as a complete one did (the same config and the same frames on every
search clip, whatever its parameters) takes that trial's value instead (``reuse_identical``).

Outputs in the search folder: ``best.yaml`` (the best overrides; ``python -m mer.train
+experiment=best``), ``trials.csv``, ``history.png``, ``importances.png``, ``parallel.png`` and
``final/`` (the retrained best model and its test metrics).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import shutil
import socket
import warnings
import zlib
from pathlib import Path
from typing import Any

import optuna
import yaml
from hydra import compose
from omegaconf import DictConfig, OmegaConf
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from mer.cli import CONFIG_DIR, command, override_key
from mer.data.build import build_clip_sampler, load_records
from mer.data.splits import Fold, carve_validation, subject_holdout
from mer.engine.experiment import run as train_run
from mer.engine.reports import write_json
from mer.locks import exclusive

log = logging.getLogger("mer.tune")


# ---- the search space ----------------------------------------------------------------------


def _active(spec: dict, chosen: dict[str, Any]) -> bool:
    """A conditional parameter exists only when every ``when`` condition holds."""
    for name, allowed in (spec.get("when") or {}).items():
        values = allowed if isinstance(allowed, (list, tuple)) else [allowed]
        if chosen.get(name) not in values:
            return False
    return True


def suggest(trial: optuna.Trial, space: dict) -> dict[str, Any]:
    """Draw a trial's parameters from a search space (``configs/search/<name>.yaml``) -> {config key: value}.

    A parameter is ``name: {type: categorical|int|float, choices | low, high[, log, step], when: {...}, key: ...}``.
    ``key`` is the config key it sets (default: the name; give one when two samplers' options share a
    key but not a range); a config group's name (``clip_sampler``, ``loss``) picks one of its files,
    any other key (``clip_sampler.num_frames``, ``seed``) sets a value. ``when: {other_name: value or
    [values]}`` makes it conditional. Parameters are drawn in file order, so ``when`` may refer to any
    earlier one.
    """
    chosen: dict[str, Any] = {}  # Optuna name -> value, for ``when``
    overrides: dict[str, Any] = {}  # config key -> value
    for name, spec in space.items():
        if not _active(spec, chosen):
            continue
        kind = spec.get("type", "categorical")
        if kind == "categorical":
            chosen[name] = trial.suggest_categorical(name, list(spec["choices"]))
        elif kind == "int":
            chosen[name] = trial.suggest_int(
                name, spec["low"], spec["high"], step=spec.get("step", 1), log=spec.get("log", False)
            )
        elif kind == "float":
            chosen[name] = trial.suggest_float(name, spec["low"], spec["high"], step=spec.get("step"), log=spec.get("log", False))
        else:
            raise ValueError(f"search parameter {name}: unknown type {kind!r}; valid choices: categorical, float, int")
        overrides[spec.get("key", name)] = chosen[name]
    return overrides


CONFIGS = CONFIG_DIR


def is_group(key: str) -> bool:
    """A config group (``clip_sampler``, ``loss``): its value picks a file; any other key sets a value."""
    return "." not in key and (CONFIGS / key).is_dir()


def as_overrides(params: dict[str, Any]) -> list[str]:
    """Hydra overrides, config groups first: ``clip_sampler=keyframe clip_sampler.num_frames=12``."""
    groups = [f"{k}={v}" for k, v in params.items() if is_group(k)]
    values = [f"{k}={v}" for k, v in params.items() if not is_group(k)]
    return groups + values


# ---- splits: test subjects never reach a trial ----------------------------------------------


def search_split(records, cfg: DictConfig) -> tuple[list, Fold, list]:
    """(search records, the trials' fold over them, test records).

    Trials get only the search records: the test subjects' clips are not even in what a trial
    could index.
    """
    if not cfg.cv.val_fraction > 0:  # the trials' score is their validation UF1
        raise ValueError(f"a search needs validation subjects: cv.val_fraction must be > 0 (got {cfg.cv.val_fraction})")
    search, test = subject_holdout(records, test_size=cfg.cv.test_size or 0.25, seed=cfg.cv.seed)
    search_records = [records[i] for i in search]
    train, val = carve_validation(search_records, range(len(search_records)), fraction=cfg.cv.val_fraction, seed=cfg.cv.seed)
    fold = Fold(0, tuple(int(i) for i in train), tuple(int(i) for i in val), ())
    return search_records, fold, [records[i] for i in test]


# ---- the study ---------------------------------------------------------------------------------


def make_pruner(cfg: DictConfig) -> optuna.pruners.BasePruner:
    """The pruner of ``cfg.pruner`` for trials of ``cfg.trainer.epochs`` epochs."""
    return build_pruner(
        cfg.pruner.name,
        startup_trials=cfg.pruner.startup_trials,
        warmup_epochs=cfg.pruner.warmup_epochs,
        reduction_factor=cfg.pruner.get("reduction_factor"),
        epochs=cfg.trainer.epochs,
    )


def build_pruner(
    name: str, *, startup_trials: int, warmup_epochs: int, reduction_factor: int | None = None, epochs: int
) -> optuna.pruners.BasePruner:
    """A pruner by name (median, halving, hyperband, none), with the settings of ``tune.yaml``'s ``pruner``."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_epochs)
    factor = {} if reduction_factor is None else {"reduction_factor": int(reduction_factor)}
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, warmup_epochs), **factor)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, warmup_epochs), max_resource=epochs, **factor)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r}; valid choices: halving, hyperband, median, none")


def default_storage_url(search_dir: Path) -> str:
    """The study's SQLite file in the search folder, where ``storage=null`` puts it."""
    return f"sqlite:///{(search_dir / 'study.db').resolve()}"


def make_storage(cfg: DictConfig, search_dir: Path) -> optuna.storages.BaseStorage:
    url = cfg.storage or default_storage_url(search_dir)
    # Heartbeats let a trial whose process was killed be marked failed (and retried) instead of
    # staying "running" for ever.
    if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback"):  # optuna >= 4.9 renamed it
        retry = {"heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)}
    else:
        retry = {"failed_trial_callback": optuna.storages.RetryFailedTrialCallback(max_retry=1)}
    return optuna.storages.RDBStorage(
        url,
        heartbeat_interval=cfg.heartbeat_seconds,
        grace_period=3 * cfg.heartbeat_seconds,
        **retry,
        engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {},
    )


def retried_trials(trials: list[FrozenTrial]) -> set[int]:
    """Numbers of the trials a retry was queued for (Optuna's retry copies carry ``retry_history``)."""
    return {number for t in trials for number in t.system_attrs.get("retry_history", ())}


def tally(trials: list[FrozenTrial]) -> dict[str, int]:
    """complete, pruned, failed (not retried) and retried (failed, and rerun by a copy) trials;
    the first three count toward ``n_trials``."""
    retried = retried_trials(trials)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    return {
        "complete": sum(t.state == TrialState.COMPLETE for t in trials),
        "pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "failed": sum(t.number not in retried for t in failed),
        "retried": sum(t.number in retried for t in failed),
    }


def done_trials(study: optuna.Study) -> int:
    """The study's trials that count toward ``n_trials`` (see the module's docstring)."""
    counts = tally(study.get_trials(deepcopy=False))
    return counts["complete"] + counts["pruned"] + counts["failed"]


def fail_stale_trials(study: optuna.Study) -> None:
    """Mark the trials of killed processes failed; the storage's retry callback queues their copies."""
    with warnings.catch_warnings():  # experimental since optuna 2.9, still there in 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


# ---- identical trials: the same frames and the same training, run once ---------------------


def sampler_fingerprint(sampler, records, draws: int = 3) -> str:
    """What a sampler does to ``records``: the frames of its evaluation draw and of ``draws`` seeded
    training draws of every clip, each with how much randomness it used. Two settings with one
    fingerprint give a trial the same frames: e.g. ``rise_share`` 0.95 and 1.0 with 8 keyframes both
    put 7 frames on the rise, which a continuous search space cannot tell apart."""
    digest = hashlib.sha1()
    for i, record in enumerate(records):
        digest.update(repr(sampler(record, train=False, rng=random.Random(i))).encode())
        for draw in range(draws):
            rng = random.Random(f"{i}:{draw}")
            digest.update(repr((sampler(record, train=True, rng=rng), rng.random())).encode())
    return digest.hexdigest()


def trial_fingerprint(cfg: DictConfig, records) -> str:
    """A trial's composed training config with its sampler replaced by the frames the sampler gives
    on the search clips (:func:`sampler_fingerprint`); the keys of ``NEUTRAL_KEYS`` are left out."""
    settings = OmegaConf.to_container(cfg, resolve=False)
    for key in NEUTRAL_KEYS:
        group, name = key.split(".")
        settings.get(group, {}).pop(name, None)
    sampler_settings = settings.pop("clip_sampler")
    frames = sampler_fingerprint(build_clip_sampler(cfg.clip_sampler), records)
    text = json.dumps([settings, sampler_settings["num_frames"], frames], sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()


def identical_trial(study: optuna.Study, fingerprint: str) -> FrozenTrial | None:
    """The first complete trial of ``study`` with this fingerprint."""
    for twin in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if twin.user_attrs.get("fingerprint") == fingerprint:
            return twin
    return None


class Objective:
    """One trial: compose the config with the trial's overrides, train, return the validation UF1.

    With ``reuse_identical``, a trial whose config and frames match a complete trial's
    (:func:`trial_fingerprint`) takes that trial's value and curve without training (``same_as``
    and 0 ``epochs_run`` in trials.csv): training is deterministic on CPU, so it would repeat it.
    """

    def __init__(self, cfg: DictConfig, base_overrides: list[str], records, fold: Fold, search_dir: Path) -> None:
        self.cfg, self.base_overrides, self.records, self.fold, self.search_dir = cfg, base_overrides, records, fold, search_dir

    def __call__(self, trial: optuna.Trial) -> float:
        params = suggest(trial, OmegaConf.to_container(self.cfg.search.params, resolve=True))
        overrides = as_overrides(params)
        trial.set_user_attr("overrides", overrides)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        trial.set_user_attr("epochs_run", 0)  # a retry inherits its killed trial's user attributes
        try:
            cfg = compose(
                config_name="train", overrides=self.base_overrides + overrides + ["evaluate_test=false", "resume=false"]
            )
            if self.cfg.get("reuse_identical", False):
                fingerprint = trial_fingerprint(cfg, self.records)
                trial.set_user_attr("fingerprint", fingerprint)
                twin = identical_trial(trial.study, fingerprint)
                if twin is not None:
                    for step, value in sorted(twin.intermediate_values.items()):
                        trial.report(value, step=step)
                    trial.set_user_attr("same_as", twin.number)
                    log.info(
                        "trial %d gives the same frames and training as trial %d: its value, not trained",
                        trial.number,
                        twin.number,
                    )
                    return float(twin.value)

            def report(fold: int, epoch: int, record: dict) -> None:
                value = record["val_uf1"]
                trial.report(value, step=epoch)
                trial.set_user_attr("epochs_run", epoch + 1)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"epoch {epoch}: validation UF1 {value:.4f}")

            result = train_run(
                cfg, self.search_dir / "trials" / f"{trial.number:04d}", records=self.records, folds=[self.fold], on_epoch=report
            )
        except optuna.TrialPruned:
            raise
        except Exception as exc:  # NaN, out of memory, an impossible combination: recorded, the search goes on
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
            trial.set_user_attr("fail_reason", reason)
            log.warning("trial %d failed: %s", trial.number, reason)
            raise
        value = float(result["val_uf1"])
        if not math.isfinite(value):
            raise FloatingPointError("validation UF1 is not finite")
        return value


def stop_at(n_trials: int):
    """An ``optimize`` callback that stops this worker once the study has ``n_trials`` that count
    (Optuna's MaxTrialsCallback counts states, and a retried failure has the state of a real one)."""

    def stop(study: optuna.Study, trial: FrozenTrial) -> None:
        if done_trials(study) >= n_trials:
            study.stop()

    return stop


class Progress:
    """A progress bar of the trials that count toward ``n_trials`` (done / pruned / failed, and the
    retried ones apart) with the best value."""

    def __init__(self, study: optuna.Study, total: int) -> None:
        self.total = total
        self.bar = tqdm(total=total, desc="trials", dynamic_ncols=True)
        self(study, None)

    def __call__(self, study: optuna.Study, trial) -> None:
        trials = study.get_trials(deepcopy=False)
        counts = tally(trials)
        done = counts["complete"] + counts["pruned"] + counts["failed"]
        self.bar.n = min(done, self.total)
        best = max((t.value for t in trials if t.state == TrialState.COMPLETE and t.value is not None), default=float("nan"))
        self.bar.set_postfix(
            done=counts["complete"],
            pruned=counts["pruned"],
            failed=counts["failed"],
            retried=counts["retried"],
            best=f"{best:.4f}",
        )
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def write_reports(study: optuna.Study, search_dir: Path, base_overrides: list[str] = ()) -> dict | None:
    """trials.csv, best.yaml and the plots; returns the best trial's summary (None without one).

    ``experiment/best.yaml`` holds the best trial's parameters; its header also gives the whole
    command line with the search's fixed overrides (``base_overrides``: data, epochs, ...).
    """
    table = study.trials_dataframe(attrs=("number", "value", "state", "params", "user_attrs", "duration"))
    # the killed trial a retry reruns (its copy's retry history ends with it)
    table["retry_of"] = [(t.system_attrs.get("retry_history") or [None])[-1] for t in study.get_trials(deepcopy=False)]
    table.to_csv(search_dir / "trials.csv", index=False)
    completed = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if not completed:
        return None
    best = study.best_trial
    overrides = best.user_attrs.get("overrides", as_overrides(best.params))
    pairs = [o.split("=", 1) for o in overrides]
    best_yaml = OmegaConf.create({"defaults": [{f"override /{k}": v} for k, v in pairs if is_group(k)]})
    values = {k: yaml.safe_load(v) for k, v in pairs if not is_group(k)}
    for key, value in values.items():
        OmegaConf.update(best_yaml, key, value, force_add=True)
    header = (
        f"# @package _global_\n# best of study {study.study_name!r}: trial {best.number}, validation UF1 {best.value:.4f}\n"
        f"# python -m mer.train +experiment=best  (with hydra.searchpath=[file://{search_dir.resolve()}])\n"
        f"# the search's fixed overrides: {' '.join(base_overrides) or '(none)'}\n"
        f"# or: python -m mer.train {' '.join([*base_overrides, *overrides])}\n"
    )
    (search_dir / "experiment").mkdir(exist_ok=True)
    text = header + OmegaConf.to_yaml(best_yaml)
    (search_dir / "best.yaml").write_text(text)
    (search_dir / "experiment" / "best.yaml").write_text(text)
    _plots(study, search_dir)
    return {"trial": best.number, "val_uf1": best.value, "overrides": overrides}


def _plots(study: optuna.Study, search_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    for name, plot in (
        ("history", ovm.plot_optimization_history),
        ("importances", ovm.plot_param_importances),
        ("parallel", ovm.plot_parallel_coordinate),
    ):
        try:
            with warnings.catch_warnings():  # experimental-API and few-trials notices, not problems
                warnings.simplefilter("ignore")
                ax = plot(study)
            figure = (ax.flat[0] if hasattr(ax, "flat") else ax).get_figure()
            figure.set_size_inches(9, 5)
            figure.tight_layout()
            figure.savefig(search_dir / f"{name}.png", dpi=110)
            plt.close(figure)
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:  # e.g. importances need 2+ completed trials
            log.info("no %s plot: %s", name, exc)


def finish(
    cfg: DictConfig, base_overrides: list[str], search_records, fold: Fold, test_records, best: dict, search_dir: Path
) -> dict:
    """Retrain the best configuration on the search subjects; evaluate once on the test subjects."""
    final_cfg = compose(
        config_name="train", overrides=base_overrides + best["overrides"] + ["evaluate_test=true", "resume=false"]
    )
    n = len(search_records)
    final_fold = Fold(0, fold.train, fold.val, tuple(range(n, n + len(test_records))))
    result = train_run(final_cfg, search_dir / "final", records=list(search_records) + list(test_records), folds=[final_fold])
    test = test_records
    summary = {
        "best_trial": best["trial"],
        "validation_uf1": best["val_uf1"],
        "overrides": best["overrides"],
        "test_uf1": result.get("uf1"),
        "test_uar": result.get("uar"),
        "test_accuracy": result.get("accuracy"),
        "test_clips": len(test),
    }
    write_json(search_dir / "final" / "summary.json", summary)
    log.info(
        "best trial %d: validation UF1 %.4f; retrained, held-out test UF1 %.4f (UAR %.4f) on %d clips",
        best["trial"],
        best["val_uf1"],
        summary["test_uf1"],
        summary["test_uar"],
        len(test),
    )
    return summary


# Overrides that change how fast a trial runs or what it shows, not what it measures: a study may be
# continued with other values of these.
NEUTRAL_KEYS = ("trainer.num_workers", "trainer.progress", "data.cache_dir")


def study_identity(cfg: DictConfig, base_overrides: list[str]) -> dict:
    """What a study's trials are measured under: the training overrides and the search space."""
    identity = {
        "overrides": sorted(o for o in base_overrides if override_key(o) not in NEUTRAL_KEYS),
        "space": OmegaConf.to_container(cfg.search.params, resolve=True),
    }
    return json.loads(json.dumps(identity))  # as the storage gives it back


def identity_changes(stored: dict, identity: dict) -> list[str]:
    """What differs between two study identities, one line per config key or search parameter:
    ``override trainer.epochs: then trainer.epochs=2, now trainer.epochs=3``."""
    changes = []
    then, now = stored["overrides"], identity["overrides"]
    for key in sorted({override_key(o) for o in set(then) ^ set(now)}):
        was, is_ = [o for o in then if override_key(o) == key], [o for o in now if override_key(o) == key]
        changes.append(f"override {key}: then {' '.join(was) or '(not given)'}, now {' '.join(is_) or '(not given)'}")
    then, now = stored["space"], identity["space"]
    for name in sorted(set(then) | set(now)):
        if then.get(name) != now.get(name):
            was, is_ = (json.dumps(d[name]) if name in d else "(absent)" for d in (then, now))
            changes.append(f"search parameter {name}: then {was}, now {is_}")
    return changes


def check_study(study: optuna.Study, identity: dict, test_subjects: list[str], where: str) -> None:
    """Refuse to add trials to a study started under other settings or with other test subjects."""
    stored = study.user_attrs.get("identity")
    if stored is not None and stored != identity:
        changes = "; ".join(identity_changes(stored, identity))
        raise ValueError(
            f"{where}: study {study.study_name!r} was started under other settings ({changes}); "
            f"continue it with the same overrides, or start a new one with study_name=<name>"
        )
    held_out = study.user_attrs.get("test_subjects")
    if held_out is not None and held_out != test_subjects:
        raise ValueError(
            f"{where}: study {study.study_name!r} holds out test subjects {held_out}, but this worker's data and cv "
            f"settings give {test_subjects}; its trials would train on the study's test subjects"
        )
    study.set_user_attr("identity", identity)
    study.set_user_attr("test_subjects", test_subjects)


def _where(cfg: DictConfig, search_dir: Path) -> str:
    if not cfg.storage:
        return str(search_dir / "study.db")
    from sqlalchemy.engine import make_url

    return make_url(cfg.storage).render_as_string(hide_password=True)


def final_test(cfg, base_overrides, search_records, fold, test_records, best: dict, search_dir: Path) -> dict:
    """The held-out test of the best trial, once: again only if a continued study found another best."""
    done = search_dir / "final" / "summary.json"
    if done.exists():
        earlier = json.loads(done.read_text())
        if earlier["best_trial"] == best["trial"]:
            return earlier
        moved = search_dir / f"final_trial{earlier['best_trial']:04d}"
        shutil.rmtree(moved, ignore_errors=True)
        (search_dir / "final").rename(moved)
        log.warning(
            "the best trial is now %d, not %d: retraining it and evaluating it on the test subjects again "
            "(the earlier final run is in %s)",
            best["trial"],
            earlier["best_trial"],
            moved,
        )
    return finish(cfg, base_overrides, search_records, fold, test_records, best, search_dir)


def tune(cfg: DictConfig, search_dir: Path, base_overrides: list[str]) -> dict:
    search_dir.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search_records, fold, test_records = search_split(load_records(cfg.data), cfg)
    with exclusive(search_dir / "study.lock"), warnings.catch_warnings():
        # workers started together on a new SQLite file would race to create its tables
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # TPE's options, heartbeats, retries
        study = optuna.create_study(
            study_name=cfg.study_name,
            storage=make_storage(cfg, search_dir),
            direction="maximize",
            load_if_exists=True,
            pruner=make_pruner(cfg),
        )
        check_study(
            study, study_identity(cfg, base_overrides), sorted({r.subject for r in test_records}), _where(cfg, search_dir)
        )
        # Each worker joining the study gets its own TPE seed (sampler_seed for the first), so workers
        # started together do not propose the same trials, and a single worker is reproducible. The
        # count is kept under a lock of this machine; on a shared server the host name is mixed in, as
        # workers on two machines may read the same count.
        worker = int(study.user_attrs.get("workers_joined", 0))
        study.set_user_attr("workers_joined", worker + 1)
        host = zlib.crc32(socket.gethostname().encode()) % 1000 if cfg.storage else 0
        # constant_liar: other workers' running trials count as poor ones, so parallel workers do not propose one point twice
        study.sampler = optuna.samplers.TPESampler(
            seed=cfg.sampler_seed + 1000 * worker + host,
            n_startup_trials=cfg.sampler_startup_trials,
            multivariate=True,
            group=True,
            constant_liar=True,
        )
        # Optuna fails a killed worker's stale trial (and queues its retry) only before starting a
        # trial; do it on joining, so that what is left to do is counted without it.
        fail_stale_trials(study)
    done = done_trials(study)
    if done < cfg.n_trials:  # (optimize runs at least one trial even when the study has its n_trials)
        progress = Progress(study, cfg.n_trials)
        study.optimize(
            Objective(cfg, base_overrides, search_records, fold, search_dir),
            callbacks=[stop_at(cfg.n_trials), progress],
            catch=(Exception,),
            gc_after_trial=True,
            timeout=cfg.timeout,
        )
        progress.close()
    else:
        log.info("study %r already has %d of its n_trials=%d: no trial to run", cfg.study_name, done, cfg.n_trials)
    with exclusive(search_dir / "reports.lock"):  # several workers may end at once; one writes at a time
        fail_stale_trials(study)  # a killed worker's trial must not hold the final test back
        best = write_reports(study, search_dir, base_overrides)
        done = done_trials(study)
        summary = {"study": cfg.study_name, "finished_trials": done, "best": best}
        if best is not None and cfg.final_test and done >= cfg.n_trials:
            # a queued retry is not waited for: with the study at its n_trials no worker starts it
            running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if running:
                log.info("%d trials of other workers still run: the last worker to finish retrains the best", len(running))
            else:
                summary["final"] = final_test(cfg, base_overrides, search_records, fold, test_records, best, search_dir)
    if best is not None:
        log.info(
            "best trial %d (validation UF1 %.4f): python -m mer.train %s",
            best["trial"],
            best["val_uf1"],
            " ".join([*base_overrides, *best["overrides"]]),
        )
    return summary


TUNE_CONFIG = CONFIGS / "tune.yaml"


def search_keys() -> set[str]:
    """The search's own keys: ``search`` and every top-level key of ``configs/tune.yaml`` (n_trials, pruner, ...)."""
    return {"search"} | {key for key in OmegaConf.load(TUNE_CONFIG) if key not in ("defaults", "hydra")}


def trial_overrides(task: list[str]) -> list[str]:
    """The command line's overrides that belong to the training config, i.e. all but the search's own keys."""
    own = search_keys()
    return [o for o in task if override_key(o).split(".")[0] not in own]


def base_overrides(hydra_overrides: list[str], task: list[str]) -> list[str]:
    """What every trial of a search gets from its command line (Hydra's ``overrides.hydra`` and
    ``overrides.task``): ``hydra.searchpath`` (e.g. an earlier search's folder, for
    ``+experiment=best``), which must reach the trials' compose too, and the training overrides."""
    return [o for o in hydra_overrides if override_key(o) == "hydra.searchpath"] + trial_overrides(task)


@command("tune")
def main(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    summary = tune(
        cfg, Path(hydra_cfg.runtime.output_dir), base_overrides(list(hydra_cfg.overrides.hydra), list(hydra_cfg.overrides.task))
    )
    best = summary.get("best") or {}
    return float(best.get("val_uf1", float("nan")))


if __name__ == "__main__":
    main()
