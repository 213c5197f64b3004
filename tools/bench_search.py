r"""Search benchmark: pruning and parallel workers of ``python -m mer.tune``, and the best sampling on held-out test subjects.

    python tools/bench_search.py                                  # the reduced scale below, about 35 min on 2 busy cores
    python tools/bench_search.py --seeds 0 --trials 6 --epochs 4 --parallel-trials 4 --train-seeds 0
    python tools/bench_search.py --stages parallel --sessions shared   # add the workers-in-one-session rows
    python tools/bench_search.py --out /work/bench_medium --stages prune test --subjects 24 --clips 12 --size 112 \
        --epochs 12 --precise-bn 10 --trials 16 --seeds 0 --pruners median --startup-trials 5 --warmup-epochs 3 \
        --tpe-startup 8 --threads 2 --num-workers 2 --cache ~/.cache/mer        # mer.train's own set: 80 min alone
    python tools/bench_search.py --out /work/bench_medium32 --continue-from /work/bench_medium --stages prune --trials 32 \
        <the same scale options> --pruners median halving       # those studies continued from 16 to 32 trials
    python tools/bench_search.py --out /work/bench_study --data synthetic_study --training default --epochs 30 \
        --precise-bn 20 --trials 40 --seeds 0 --pruners median --startup-trials 5 --warmup-epochs 3 --tpe-startup 10 \
        --threads 2 --num-workers 2 --cache /root/.cache/mer --train-seeds 0 1 2 --parallel-trials 4 --single-threads 2
        # the default model and search on the study set (data=synthetic_study), every setting mer.tune's default

Every search is the real command, ``python -m mer.tune search=sampling ...``, run as a subprocess
with ``OMP_NUM_THREADS=--threads`` (1 by default) on a reduced synthetic set (``--subjects`` x ``--clips`` clips of
``--size`` px, cached in ``--cache``, by default ``--out``/cache) for ``--epochs`` epochs a trial. Three stages, in order:

1. ``prune``: for each sampler seed, the same search (``--trials`` trials, that TPE seed) with
   ``pruner.name=none`` then with each of ``--pruners`` (``--startup-trials``, ``--warmup-epochs``),
   back to back. Trial-epochs = epochs each trial actually trained (``len(trial.intermediate_values)``
   in the study's storage; none for a trial that took an identical one's value, ``reuse_identical``),
   summed over the study's trials; best = the study's best validation UF1.
   The seed-0 median search is the default search and runs with ``final_test=true``.
2. ``parallel``: ``--parallel-trials`` configurations drawn at random from the sampling space
   (seed 0) are enqueued in two fresh studies, so both do the same work; one worker
   (``--single-threads`` torch threads), then two workers started at once on one SQLite storage
   (one thread each); pruning off. Wall time from launch to the N-th finished trial (storage
   timestamps) and to the exit of the last process. ``--sessions own`` (default) starts each worker
   in its own session, as if from its own shell: Linux (autogroup) shares the CPU fairly between
   sessions, so workers started from one session share that session's part of a busy machine.
3. ``test``: the seed-0 search's best configuration against the default keyframe sampler and
   uniform sampling, each retrained on the search subjects and tested once on the held-out test
   subjects by the search's own :func:`mer.tune.finish` (the same split from
   :func:`mer.tune.search_split`, the same code path), for each ``--train-seeds`` (``seed=``);
   train seed 0 of the best is the search's own ``final/summary.json``.

Results accumulate in ``--out``/results.json (a later ``--stages`` run adds to them) and the
tables are printed at the end. All ratios come from one invocation, back to back: absolute times
depend on what else the machine runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import optuna
from omegaconf import OmegaConf
from optuna.trial import TrialState

from mer.tune import default_storage_url

CONFIGS = Path(__file__).resolve().parents[1] / "mer" / "configs"
STUDY = "mer-sampling"  # mer.tune's study name for search=sampling


def baselines(cfg) -> dict[str, list[str]]:
    """The default sampling, and uniform sampling at the default's frame count."""
    return {
        "keyframe (default)": [],
        "uniform": ["clip_sampler=uniform", f"clip_sampler.num_frames={cfg.clip_sampler.num_frames}"],
    }


def scale_overrides(args) -> list[str]:
    """The scale: ``mer.train`` overrides shared by every search and every retraining."""
    if args.data is None:  # the reduced synthetic set
        data = [
            f"data.synthetic.n_subjects={args.subjects}",
            f"data.synthetic.clips_per_subject={args.clips}",
            f"data.synthetic.size={args.size}",
            f"data.crop_size={args.size}",
        ]
    else:  # a data config as it stands, e.g. synthetic_study
        data = [f"data={args.data}"]
    training = ["loss=ce", "schedule=none"] if args.training == "ce" else []  # ce: the older figures' training
    return [
        *data,
        f"data.cache_dir={args.cache or args.out / 'cache'}",
        f"trainer.epochs={args.epochs}",
        f"trainer.num_workers={args.num_workers}",
        "trainer.progress=false",
        f"trainer.precise_bn_batches={args.precise_bn}",
        *training,
    ]


def tune_command(args, search_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mer.tune", "search=sampling", *scale_overrides(args), *extra, f"hydra.run.dir={search_dir}"]


def study_figures(search_dir: Path) -> dict:
    """Trial counts, trial-epochs and the best validation UF1 from the study's storage."""
    study = optuna.load_study(study_name=STUDY, storage=default_storage_url(search_dir))
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state.is_finished()]
    completed = [t for t in finished if t.state == TrialState.COMPLETE]
    best = max(completed, key=lambda t: t.value, default=None)
    return {
        "trials": len(finished),
        "complete": len(completed),
        "pruned": sum(t.state == TrialState.PRUNED for t in finished),
        "failed": sum(t.state == TrialState.FAIL for t in finished),
        # trained: a trial that took an identical one's value (reuse_identical) reports its curve, trains no epoch
        "trial_epochs": sum(len(t.intermediate_values) for t in finished if "same_as" not in t.user_attrs),
        "reused": sum("same_as" in t.user_attrs for t in finished),
        "reused_epochs": sum(len(t.intermediate_values) for t in finished if "same_as" in t.user_attrs),
        "best_val_uf1": None if best is None else best.value,
        "best_trial": None if best is None else best.number,
        "best_overrides": None if best is None else best.user_attrs.get("overrides"),
        "fail_reasons": [t.user_attrs.get("fail_reason") for t in finished if t.state == TrialState.FAIL],
        "completions": sorted(t.datetime_complete.timestamp() for t in finished if t.datetime_complete is not None),
        "mean_trial_s": statistics.mean(t.duration.total_seconds() for t in finished) if finished else None,
    }


def launch(command: list[str], log: Path, threads: int, own_session: bool) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return subprocess.Popen(
        command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=CONFIGS.parent, start_new_session=own_session
    )


def run_search(
    args,
    search_dir: Path,
    *extra: str,
    workers: int = 1,
    threads: int = 1,
    prepare=None,
    own_session: bool = False,
    fresh: bool = True,
) -> dict:
    """Run ``workers`` processes of the same search at once (on a fresh folder, or continuing the study
    already in ``search_dir`` when not ``fresh``); wall times of this run and figures of the whole study."""
    if fresh:
        shutil.rmtree(search_dir, ignore_errors=True)
    search_dir.mkdir(parents=True, exist_ok=True)
    if prepare is not None:
        prepare(search_dir)
    start_clock, start = time.time(), time.perf_counter()
    processes = [
        launch(tune_command(args, search_dir, *extra), search_dir / f"worker{k}.log", threads, own_session)
        for k in range(workers)
    ]
    codes = [p.wait() for p in processes]
    wall = time.perf_counter() - start
    if any(codes):
        raise RuntimeError(f"mer.tune exited with {codes}; see {search_dir}/worker*.log")
    figures = study_figures(search_dir)
    n = args.trials if prepare is None else args.parallel_trials
    done = figures.pop("completions")
    figures["wall_s"] = wall
    figures["wall_to_n_s"] = done[n - 1] - start_clock if len(done) >= n else math.nan
    return figures


# ---- stage 1: pruning --------------------------------------------------------------------------


def stage_prune(args, results: dict) -> None:
    common = [
        f"pruner.startup_trials={args.startup_trials}",
        f"pruner.warmup_epochs={args.warmup_epochs}",
        f"pruner.reduction_factor={args.reduction_factor or 'null'}",
        f"sampler_startup_trials={args.tpe_startup}",
    ]
    for seed in args.seeds:
        row = results.setdefault("prune", {}).setdefault(str(seed), {})
        # the default search first: its best is the one tested
        for name in args.pruners + (["none"] if args.unpruned else []):
            if name in row:  # from an earlier invocation with the same settings
                continue
            folder = args.out / f"prune_seed{seed}_{name}"
            before = 0
            # an interrupted search is continued, as mer.tune resumes one (its wall time is then this run's only)
            resumed = args.continue_from is None and folder.exists()
            if args.continue_from is not None:  # continue the earlier study to --trials, as mer.tune resumes one
                if not folder.exists():
                    shutil.copytree(args.continue_from / folder.name, folder)
                before = study_figures(folder)["trials"]
            final = "true" if (seed == 0 and name == "median" and args.continue_from is None) else "false"
            row[name] = run_search(
                args,
                folder,
                f"n_trials={args.trials}",
                f"sampler_seed={seed}",
                f"pruner.name={name}",
                *common,
                f"final_test={final}",
                threads=args.threads,
                fresh=args.continue_from is None and not resumed,
            )
            fig = row[name]
            fig["continued_from_trials"] = before
            fig["resumed"] = resumed
            print(
                f"seed {seed} pruner {name}: {fig['trials']} trials ({fig['pruned']} pruned, {fig['failed']} failed), "
                f"{fig['trial_epochs']} trial-epochs trained ({fig['reused']} trials took an identical one's value, "
                f"{fig['reused_epochs']} epochs not run), best val UF1 {fig['best_val_uf1']:.4f}, {fig['wall_s']:.0f} s",
                flush=True,
            )
            save(args, results)


# ---- stage 2: parallel workers -----------------------------------------------------------------


def random_configurations(n: int, seed: int = 0) -> list[dict]:
    """``n`` parameter sets of the sampling space, drawn at random (conditional parameters included)."""
    from mer.tune import suggest

    space = OmegaConf.to_container(OmegaConf.load(CONFIGS / "search" / "sampling.yaml").params, resolve=True)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        suggest(trial, space)
        out.append(dict(trial.params))
        study.tell(trial, 0.0)
    return out


def stage_parallel(args, results: dict) -> None:
    configurations = random_configurations(args.parallel_trials)

    def enqueue(search_dir: Path) -> None:
        study = optuna.create_study(study_name=STUDY, storage=default_storage_url(search_dir), direction="maximize")
        for params in configurations:
            study.enqueue_trial(params)

    common = [f"n_trials={args.parallel_trials}", "pruner.name=none", "final_test=false"]
    row = {"configurations": configurations}
    own = args.sessions == "own"
    for workers, threads in ((1, args.single_threads), (2, 1)):
        fig = run_search(
            args,
            args.out / f"parallel_{args.sessions}_{workers}",
            *common,
            workers=workers,
            threads=threads,
            prepare=enqueue,
            own_session=own,
        )
        fig["threads"] = threads
        row[str(workers)] = fig
        print(
            f"{workers} worker(s) x {threads} thread(s): {fig['trials']} trials, {fig['trial_epochs']} trial-epochs, "
            f"N-th trial at {fig['wall_to_n_s']:.0f} s, exit at {fig['wall_s']:.0f} s",
            flush=True,
        )
    results[f"parallel_{args.sessions}"] = row
    save(args, results)


# ---- stage 3: best vs keyframe vs uniform on held-out test subjects ---------------------------


def stage_test(args, results: dict) -> None:
    import torch
    from hydra import compose, initialize_config_dir

    from mer.data.build import load_records
    from mer.tune import finish, search_split

    torch.set_num_threads(args.threads)  # as the searches' workers
    search_dir = args.out / "prune_seed0_median"
    summary = json.loads((search_dir / "final" / "summary.json").read_text())
    study = optuna.load_study(study_name=STUDY, storage=default_storage_url(search_dir))
    rows = results.get("test", {}).get("rows") or {}  # train seeds of an earlier invocation are kept
    rows.setdefault("best of the search", {"overrides": summary["overrides"], "seeds": {}})
    rows["best of the search"]["seeds"]["0"] = {
        "uf1": summary["test_uf1"],
        "uar": summary["test_uar"],
        "clips": summary["test_clips"],
    }
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        configs = {"best of the search": summary["overrides"]} | baselines(compose("tune", overrides=scale_overrides(args)))
        for name, overrides in configs.items():
            rows.setdefault(name, {"overrides": overrides, "seeds": {}})
        for seed in args.train_seeds:
            base = scale_overrides(args) + [f"seed={seed}"]
            cfg = compose("tune", overrides=base)
            search_records, fold, test_records = search_split(load_records(cfg.data), cfg)
            assert sorted({r.subject for r in test_records}) == study.user_attrs["test_subjects"], (
                "not the search's test subjects"
            )
            for name, overrides in configs.items():
                if str(seed) in rows[name]["seeds"]:
                    continue
                out = args.out / "test" / f"{name.split()[0]}_seed{seed}"
                shutil.rmtree(out, ignore_errors=True)
                best = {"trial": -1, "val_uf1": math.nan, "overrides": overrides}
                got = finish(cfg, base, search_records, fold, test_records, best, out)
                rows[name]["seeds"][str(seed)] = {"uf1": got["test_uf1"], "uar": got["test_uar"], "clips": got["test_clips"]}
                print(f"{name} train seed {seed}: test UF1 {got['test_uf1']:.4f} UAR {got['test_uar']:.4f}", flush=True)
                results["test"] = {"rows": rows, "test_subjects": study.user_attrs["test_subjects"]}
                save(args, results)  # each retraining kept as it finishes
    results["test"] = {"rows": rows, "test_subjects": study.user_attrs["test_subjects"]}
    save(args, results)


# ---- tables ------------------------------------------------------------------------------------


def save(args, results: dict) -> None:
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))


def fmt(value, spec=".3f") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def print_tables(args, results: dict) -> None:
    if "prune" in results:
        pruners = [p for p in ("median", "halving", "hyperband") if any(p in row for row in results["prune"].values())]
        print(
            f"\nPruning: {args.trials} trials x {args.epochs} epochs, each pruner (startup_trials {args.startup_trials}, "
            f"warmup_epochs {args.warmup_epochs}) against none, same TPE seed"
        )
        print(
            "| sampler seed | pruner | trial-epochs none | trial-epochs pruned | pruned / none | pruned trials | best val UF1 none | best val UF1 pruned | wall s none / pruned |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        mean = lambda xs: statistics.mean(x for x in xs if x is not None)  # noqa: E731
        for name in pruners:
            rows = [(seed, row["none"], row[name]) for seed, row in results["prune"].items() if name in row and "none" in row]
            if not rows:  # the unpruned search not run yet (--no-unpruned)
                for seed, row in results["prune"].items():
                    if name in row:
                        fig = row[name]
                        print(
                            f"| {seed} | {name} | - | {fig['trial_epochs']} | - | {fig['pruned']} / {fig['trials']} | - | {fmt(fig['best_val_uf1'])} | - / {fig['wall_s']:.0f} |"
                        )
                continue
            for seed, a, b in rows:
                print(
                    f"| {seed} | {name} | {a['trial_epochs']} | {b['trial_epochs']} | {b['trial_epochs'] / a['trial_epochs']:.0%} | "
                    f"{b['pruned']} / {b['trials']} | {fmt(a['best_val_uf1'])} | {fmt(b['best_val_uf1'])} | {a['wall_s']:.0f} / {b['wall_s']:.0f} |"
                )
            print(
                f"| mean | {name} | {mean([a['trial_epochs'] for _, a, _ in rows]):.1f} | {mean([b['trial_epochs'] for _, _, b in rows]):.1f} | "
                f"{mean([b['trial_epochs'] / a['trial_epochs'] for _, a, b in rows]):.0%} | | {mean([a['best_val_uf1'] for _, a, _ in rows]):.3f} | "
                f"{mean([b['best_val_uf1'] for _, _, b in rows]):.3f} | |"
            )
    runs = [(s, results[f"parallel_{s}"]) for s in ("own", "shared") if f"parallel_{s}" in results]
    if runs:
        print(
            f"\nParallel: the same {len(runs[0][1]['configurations'])} enqueued configurations x {args.epochs} epochs, pruning off, "
            "one SQLite storage"
        )
        print(
            "| workers' sessions | workers | torch threads each | trials run | trial-epochs | mean s / trial | s to N-th trial | s to exit | 2 / 1 workers (N-th trial, exit) |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for sessions, row in runs:
            one, two = row["1"], row["2"]
            for k, fig in (("1", one), ("2", two)):
                ratio = f"{two['wall_to_n_s'] / one['wall_to_n_s']:.2f}, {two['wall_s'] / one['wall_s']:.2f}" if k == "2" else ""
                print(
                    f"| {sessions} | {k} | {fig['threads']} | {fig['trials']} | {fig['trial_epochs']} | {fmt(fig.get('mean_trial_s'), '.1f')} | "
                    f"{fig['wall_to_n_s']:.0f} | {fig['wall_s']:.0f} | {ratio} |"
                )
    if "test" in results:
        rows = results["test"]["rows"]
        seeds = sorted({s for r in rows.values() for s in r["seeds"]}, key=int)
        clips = next(iter(next(iter(rows.values()))["seeds"].values()))["clips"]
        print(f"\nHeld-out test subjects {results['test']['test_subjects']} ({clips} clips), retrained on the search subjects")
        print(
            "| configuration | overrides | "
            + " | ".join(f"test UF1 seed {s}" for s in seeds)
            + " | mean test UF1 | mean test UAR |"
        )
        print("|---|---|" + "---|" * len(seeds) + "---|---|")
        for name, row in rows.items():
            uf1 = [row["seeds"].get(s, {}).get("uf1") for s in seeds]
            uar = [row["seeds"][s]["uar"] for s in seeds if s in row["seeds"]]
            got = [x for x in uf1 if x is not None]
            print(
                f"| {name} | `{' '.join(row['overrides']) or '(none)'}` | "
                + " | ".join(fmt(x) for x in uf1)
                + f" | {fmt(statistics.mean(got) if got else None)} | {fmt(statistics.mean(uar) if uar else None)} |"
            )
        print_paired(args, rows, seeds)


def retraining_folder(args, name: str, seed: str) -> Path:
    """The run folder of a held-out retraining (train seed 0 of the best: the search's own)."""
    if name == "best of the search" and seed == "0":
        return args.out / "prune_seed0_median" / "final"
    return args.out / "test" / f"{name.split()[0]}_seed{seed}" / "final"


def print_paired(args, rows: dict, seeds: list[str], reference: str = "keyframe (default)") -> None:
    """Each configuration minus the default, paired by training seed, with a paired bootstrap 95%
    interval over the test clips (the clip is the unit, as in mer-study)."""
    from mer.engine.compare import paired_bootstrap, paired_predictions
    from mer.study import read_predictions

    print(f"\n| minus {reference} | UF1 by training seed | mean ± std | 95% interval over clips |")
    print("|---|---|---|---|")
    for name in rows:
        if name == reference:
            continue
        pairs, differences = [], []
        for seed in seeds:
            folders = retraining_folder(args, name, seed), retraining_folder(args, reference, seed)
            ours, theirs = (read_predictions(str(folder)) for folder in folders)
            if ours is None or theirs is None:
                continue
            pairs.append(paired_predictions(ours, theirs, *map(str, folders)))
            differences.append(100 * (rows[name]["seeds"][seed]["uf1"] - rows[reference]["seeds"][seed]["uf1"]))
        if not pairs:
            continue
        _, low, high = paired_bootstrap(pairs)
        spread = f" ± {statistics.stdev(differences):.1f}" if len(differences) > 1 else ""
        print(
            f"| {name} | {' / '.join(f'{d:+.1f}' for d in differences)} | {statistics.mean(differences):+.1f}{spread} "
            f"| {100 * low:+.1f} to {100 * high:+.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/mer_bench_search"))
    parser.add_argument("--stages", nargs="+", default=["prune", "parallel", "test"], choices=["prune", "parallel", "test"])
    parser.add_argument(
        "--data",
        default=None,
        help="a data config (e.g. synthetic_study) instead of the reduced set of --subjects/--clips/--size",
    )
    parser.add_argument(
        "--training",
        choices=["ce", "default"],
        default="ce",
        help="ce: loss=ce schedule=none, as the older figures were measured; default: mer.train's own loss and schedule",
    )
    parser.add_argument("--subjects", type=int, default=16)
    parser.add_argument("--clips", type=int, default=8, help="clips per subject")
    parser.add_argument("--size", type=int, default=64, help="frame size and crop size (px)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--precise-bn", type=int, default=4, help="trainer.precise_bn_batches")
    parser.add_argument("--trials", type=int, default=8, help="trials per pruning search")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="TPE sampler seeds of the pruning searches")
    parser.add_argument("--pruners", nargs="+", default=["median", "halving"], choices=["median", "halving", "hyperband"])
    parser.add_argument("--startup-trials", type=int, default=3)
    parser.add_argument("--warmup-epochs", type=int, default=2)
    parser.add_argument(
        "--reduction-factor", type=int, default=None, help="pruner.reduction_factor of halving and hyperband (default: Optuna's)"
    )
    parser.add_argument(
        "--unpruned",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run each seed's search without pruning too (--no-unpruned: later, in another invocation)",
    )
    parser.add_argument("--tpe-startup", type=int, default=10, help="sampler_startup_trials: random trials before TPE models")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each pruning search and of the test retrainings")
    parser.add_argument("--num-workers", type=int, default=0, help="trainer.num_workers (data loader processes)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="data.cache_dir; default --out/cache (e.g. ~/.cache/mer to reuse mer.train's set)",
    )
    parser.add_argument(
        "--continue-from",
        type=Path,
        default=None,
        help="prune stage: copy each study of this earlier --out and continue it to --trials (wall time = "
        "the continuation's; no final retraining); e.g. 16 trials grown to 32",
    )
    parser.add_argument("--parallel-trials", type=int, default=6)
    parser.add_argument("--single-threads", type=int, default=1, help="torch threads of the single worker")
    parser.add_argument(
        "--sessions",
        choices=["own", "shared"],
        default="own",
        help="own: each worker in its own session, as if started from its own shell (Linux schedules "
        "CPU fairly between sessions, autogroup); shared: all in the benchmark's session",
    )
    parser.add_argument("--train-seeds", type=int, nargs="+", default=[0, 1], help="training seeds of the held-out comparison")
    args = parser.parse_args()
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = args.out / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    start = time.perf_counter()
    print(f"{datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} CPUs; scale: {' '.join(scale_overrides(args))}", flush=True)
    for stage in args.stages:
        {"prune": stage_prune, "parallel": stage_parallel, "test": stage_test}[stage](args, results)
    print_tables(args, results)
    print(f"\nbenchmark wall time: {(time.perf_counter() - start) / 60:.1f} min")


if __name__ == "__main__":
    main()
