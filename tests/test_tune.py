"""python -m mer.tune on a tiny synthetic set: conditional spaces, no test leakage, pruning,
failures recorded, resume, two processes sharing one study, and a killed worker's trial retried."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict
from optuna.trial import TrialState

import mer.tune as tune_module
from mer.data.build import load_records
from mer.data.dataset import ClipDataset
from mer.data.synthetic import generate

CONFIGS = Path(__file__).resolve().parents[1] / "mer" / "configs"


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> Path:
    return generate(
        tmp_path_factory.mktemp("synthetic"), n_subjects=8, clips_per_subject=4, size=64, clip_seconds=0.3, seed=2, workers=2
    )


def base(annotations: Path, *extra: str) -> list[str]:
    return [
        "data=dfme",
        f"data.annotations={annotations}",
        "data.crop_size=64",
        "trainer.epochs=2",
        "trainer.num_workers=0",
        "trainer.progress=false",
        "trainer.precise_bn_batches=2",
        *extra,
    ]


def run_search(annotations: Path, search_dir: Path, *extra: str, n_trials: int = 3, edit=None) -> dict:
    overrides = base(annotations, *extra)
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("tune", overrides=overrides + [f"n_trials={n_trials}", "pruner.name=none"])
        if edit is not None:
            with open_dict(cfg):
                edit(cfg)
        return tune_module.tune(cfg, search_dir, overrides)


def test_every_search_key_on_the_command_line_stays_out_of_the_trials():
    own = OmegaConf.load(CONFIGS / "tune.yaml")
    search_only = [f"{key}=1" for key in own if key not in ("defaults", "hydra")] + ["search=training", "pruner.name=halving"]
    train_keys = ["seed=3", "clip_sampler=uniform", "trainer.epochs=2", "+data.extra=1", "data.synthetic.seed=4"]
    assert "sampler_startup_trials=1" in search_only  # the key a trial once received and failed on
    assert tune_module.trial_overrides(search_only + train_keys) == train_keys
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        train = compose("train")
    assert not tune_module.search_keys() & set(train), "a search key shadows a training key"


@pytest.mark.parametrize(("factor", "pruned"), [(None, True), (3, True), (2, False)])
def test_halving_keeps_the_best_share_of_a_rung_set_by_its_reduction_factor(factor, pruned):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(
            "tune", overrides=["pruner.name=halving", "pruner.warmup_epochs=2", f"pruner.reduction_factor={factor or 'null'}"]
        )
    study = optuna.create_study(direction="maximize", pruner=tune_module.make_pruner(cfg))
    for value in (0.1, 0.2, 0.3):  # three trials have passed the rung at step 2
        trial = study.ask()
        for step in range(3):
            trial.report(value, step)
            assert not trial.should_prune()  # a rung records the trials that reach it by asking
        study.tell(trial, value)
    trial = study.ask()
    trial.report(0.0, 0)
    trial.report(0.0, 1)
    assert not trial.should_prune()  # before the first rung (step 2) no trial is cut
    trial.report(0.25, 2)
    # second of four at the rung: kept only when half of them go on (factor 2); Optuna's default is 4
    assert trial.should_prune() is pruned


def sampling_space() -> dict:
    return OmegaConf.to_container(OmegaConf.load(CONFIGS / "search" / "sampling.yaml").params)


def test_conditional_parameters_exist_only_with_their_sampler():
    space = sampling_space()
    seen = {}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(40):
        trial = study.ask()
        params = tune_module.suggest(trial, space)
        study.tell(trial, 0.0)
        seen.setdefault(params["clip_sampler"], []).append(params)
    assert set(seen) == {"uniform", "random", "keyframe", "apex_window"}
    for params in seen["keyframe"]:
        assert {"clip_sampler.rise_share", "clip_sampler.context_frames", "clip_sampler.jitter"} <= set(params)
        assert "clip_sampler.stride" not in params and "clip_sampler.span" not in params
    for params in seen["apex_window"]:
        assert "clip_sampler.stride" in params and "clip_sampler.rise_share" not in params
    assert tune_module.as_overrides({"clip_sampler.num_frames": 8, "clip_sampler": "uniform"}) == [
        "clip_sampler=uniform",
        "clip_sampler.num_frames=8",
    ]


def test_search_writes_reports_and_never_shows_test_subjects_to_a_trial(tiny_set, tmp_path, monkeypatch):
    decoded: list[tuple[str, str]] = []  # (phase, subject) of every clip decoded
    phase = {"now": "search"}
    load_frames = ClipDataset.load_frames

    def spy(self, record, indices):
        decoded.append((phase["now"], record.subject))
        return load_frames(self, record, indices)

    monkeypatch.setattr(ClipDataset, "load_frames", spy)
    finish = tune_module.finish

    def mark_final(*args, **kwargs):
        phase["now"] = "final"
        return finish(*args, **kwargs)

    monkeypatch.setattr(tune_module, "finish", mark_final)
    summary = run_search(tiny_set, tmp_path)
    study = optuna.load_study(study_name="mer-sampling", storage=f"sqlite:///{tmp_path / 'study.db'}")
    test_subjects = set(study.user_attrs["test_subjects"])
    assert test_subjects
    searched = {s for p, s in decoded if p == "search"}
    assert searched and not (searched & test_subjects)  # no trial decoded a test clip
    assert test_subjects <= {s for p, s in decoded if p == "final"}  # the final evaluation did
    final = summary["final"]
    assert final["test_clips"] > 0 and 0.0 <= final["test_uf1"] <= 1.0
    assert final["validation_uf1"] == pytest.approx(summary["best"]["val_uf1"])
    for name in ("best.yaml", "trials.csv", "history.png", "final/summary.json", "final/metrics.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    trials = pd.read_csv(tmp_path / "trials.csv")
    assert len(trials) == 3 and set(trials["state"]) == {"COMPLETE"}
    # best.yaml is a usable experiment: mer.train composes with it (and without its folder on the
    # search path, +experiment=best is an error, not a silent default run)
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=[f"hydra.searchpath=[file://{tmp_path}]", "+experiment=best"])
        with pytest.raises(Exception, match="experiment/best"):
            compose("train", overrides=["+experiment=best"])
        shipped = compose("train", overrides=["+experiment=cri_phased"])
    assert (shipped.loss.name, shipped.schedule.name) == ("cri", "phased")
    # its command line carries the search's fixed overrides (the data, the epochs) with the best ones
    command = next(line for line in (tmp_path / "best.yaml").read_text().splitlines() if line.startswith("# or:"))
    assert command.split()[5:] == base(tiny_set) + summary["best"]["overrides"]
    best_overrides = dict(o.split("=", 1) for o in summary["best"]["overrides"])
    assert cfg.clip_sampler.name == best_overrides["clip_sampler"]
    assert str(cfg.clip_sampler.num_frames) == best_overrides["clip_sampler.num_frames"]


def test_pruned_and_failed_trials_are_recorded_and_the_search_goes_on(tiny_set, tmp_path, monkeypatch):
    def edit(cfg):
        cfg.search.params = {
            "clip_sampler.num_frames": {"type": "categorical", "choices": [0, 8]},  # 0 frames: an impossible trial
        }

    monkeypatch.setattr(tune_module, "make_pruner", lambda cfg: optuna.pruners.ThresholdPruner(upper=-1.0, n_warmup_steps=0))
    run_search(tiny_set, tmp_path, "trainer.epochs=3", n_trials=4, edit=edit)
    study = optuna.load_study(study_name="mer-sampling", storage=f"sqlite:///{tmp_path / 'study.db'}")
    states = {t.number: t.state for t in study.trials}
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert len(states) == 4 and failed and pruned
    assert all("num_frames must be >= 1" in t.user_attrs["fail_reason"] for t in failed)
    assert all(t.params["clip_sampler.num_frames"] == 0 for t in failed)
    assert all(t.user_attrs["epochs_run"] == 1 for t in pruned)  # stopped after its first epoch of 3


def test_a_trial_is_fingerprinted_by_its_frames_and_settings_not_by_its_parameters(tiny_set):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):

        def fingerprint(*overrides: str) -> str:
            cfg = compose("train", overrides=base(tiny_set, *overrides))
            return tune_module.trial_fingerprint(cfg, load_records(cfg.data))

        keyframe = ("clip_sampler=keyframe", "clip_sampler.num_frames=8", "clip_sampler.jitter=0.25")
        same = fingerprint(*keyframe, "clip_sampler.rise_share=0.95")
        # 0.95 and 1.0 of 7 non-apex frames both round to 7 on the rise: the same frames, one trial
        assert fingerprint(*keyframe, "clip_sampler.rise_share=1.0") == same
        assert fingerprint(*keyframe, "clip_sampler.rise_share=1.0", "trainer.num_workers=2") == same  # speed only
        assert fingerprint(*keyframe, "clip_sampler.rise_share=0.8") != same  # 6 on the rise, 1 after the apex
        assert fingerprint(*keyframe[:2], "clip_sampler.jitter=0.5", "clip_sampler.rise_share=1.0") != same  # other draws
        assert fingerprint(*keyframe, "clip_sampler.rise_share=1.0", "seed=3") != same  # another training
        assert fingerprint(*keyframe, "clip_sampler.rise_share=1.0", "trainer.epochs=3") != same


def test_a_trial_identical_to_a_complete_one_takes_its_value_without_training(tiny_set, tmp_path):
    def two_names_for_one_setting(cfg):
        cfg.final_test = False
        cfg.search.params = {"rise_share": {"key": "clip_sampler.rise_share", "type": "categorical", "choices": [0.6, 1.0]}}

    # the default keyframe sampler has 2 frames: any rise_share from 0.5 puts the first on the onset
    run_search(tiny_set, tmp_path, n_trials=3, edit=two_names_for_one_setting)
    study = optuna.load_study(study_name="mer-sampling", storage=f"sqlite:///{tmp_path / 'study.db'}")
    first, *copies = study.trials
    assert first.user_attrs["epochs_run"] == 2 and "same_as" not in first.user_attrs
    assert len(copies) == 2
    for copy in copies:
        assert copy.state == TrialState.COMPLETE and copy.value == first.value
        assert copy.user_attrs["same_as"] == 0 and copy.user_attrs["epochs_run"] == 0
        assert copy.intermediate_values == first.intermediate_values  # its curve, for the pruner
    assert sorted(p.name for p in (tmp_path / "trials").iterdir()) == ["0000"]  # trained once
    assert pd.read_csv(tmp_path / "trials.csv")["user_attrs_same_as"].tolist()[1:] == [0, 0]


def test_a_search_without_validation_subjects_is_refused_before_any_trial(tiny_set, tmp_path):
    with pytest.raises(ValueError, match=r"a search needs validation subjects: cv.val_fraction must be > 0 \(got 0\)"):
        run_search(tiny_set, tmp_path / "search", "cv.val_fraction=0")
    assert not (tmp_path / "search" / "trials").exists()


def test_a_study_refuses_other_settings_or_test_subjects_and_a_finished_one_runs_nothing(tiny_set, tmp_path):
    def no_final(cfg):
        cfg.final_test = False

    run_search(tiny_set, tmp_path, n_trials=1, edit=no_final)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    held_out = optuna.load_study(study_name="mer-sampling", storage=storage).user_attrs["test_subjects"]
    # other training overrides: each differing key is named, with its overrides then and now
    with pytest.raises(ValueError, match=r"study.db: study 'mer-sampling' was started under other settings") as refused:
        run_search(tiny_set, tmp_path, "trainer.epochs=3", "seed=3", n_trials=2, edit=no_final)
    message = str(refused.value)
    assert "override seed: then (not given), now seed=3" in message
    assert "override trainer.epochs: then trainer.epochs=2, now trainer.epochs=2 trainer.epochs=3" in message
    assert "search parameter" not in message

    def other_space(cfg):  # the same overrides, another search space: a parameter dropped, one's choices changed
        no_final(cfg)
        del cfg.search.params["stride"]
        cfg.search.params["clip_sampler.num_frames"].choices = [8, 16]

    with pytest.raises(ValueError, match="was started under other settings") as refused:
        run_search(tiny_set, tmp_path, n_trials=2, edit=other_space)
    message = str(refused.value)
    changes = message.split("other settings (", 1)[1].split("); continue", 1)[0].split("; ")
    assert [c.split(":")[0] for c in changes] == ["search parameter clip_sampler.num_frames", "search parameter stride"]
    assert '"choices": [8, 16]' in changes[0] and changes[1].endswith("now (absent)")  # no training override differs

    def other_split(cfg):  # same overrides, but this worker's split differs (other data, other cv settings)
        no_final(cfg)
        cfg.cv.seed = cfg.cv.seed + 1

    with pytest.raises(ValueError, match=r"holds out test subjects .* its trials would train on the study's test subjects"):
        run_search(tiny_set, tmp_path, n_trials=2, edit=other_split)
    study = optuna.load_study(study_name="mer-sampling", storage=storage)
    assert len(study.trials) == 1 and study.user_attrs["test_subjects"] == held_out  # nothing run, nothing overwritten
    # a setting that changes speed, not results, may differ; a study with its n_trials runs no more
    summary = run_search(tiny_set, tmp_path, "trainer.num_workers=1", n_trials=1, edit=no_final)
    assert summary["finished_trials"] == 1
    assert len(optuna.load_study(study_name="mer-sampling", storage=storage).trials) == 1


def tune_command(annotations: Path, search_dir: Path, n_trials: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mer.tune",
        *base(annotations),
        f"n_trials={n_trials}",
        "final_test=false",
        "pruner.name=none",
        "sampler_startup_trials=2",
        f"hydra.run.dir={search_dir}",
        *extra,
    ]


@pytest.mark.slow
def test_two_workers_share_one_study_and_a_rerun_continues_it(tiny_set, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # an experiment from a folder on the search path (as an earlier search's best.yaml) reaches every trial
    (tmp_path / "configs" / "experiment").mkdir(parents=True)
    (tmp_path / "configs" / "experiment" / "seed5.yaml").write_text("# @package _global_\nseed: 5\n")
    experiment = (f"hydra.searchpath=[file://{tmp_path / 'configs'}]", "+experiment=seed5")
    workers = [
        subprocess.Popen(
            tune_command(tiny_set, tmp_path, 4, *experiment, "reuse_identical=false"),  # every trial trains
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err[-2000:]
    study = optuna.load_study(study_name="mer-sampling", storage=f"sqlite:///{tmp_path / 'study.db'}")
    finished = [t for t in study.trials if t.state.is_finished()]
    assert 4 <= len(finished) <= 5  # both may start a trial in the last moment
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2  # both did work
    first = {t.number: t.params for t in study.trials}
    seeds = [OmegaConf.load(path).seed for path in sorted((tmp_path / "trials").glob("*/config.yaml"))]
    assert len(seeds) == len(finished) and set(seeds) == {5}
    done = subprocess.run(
        tune_command(tiny_set, tmp_path, len(finished) + 2, *experiment, "reuse_identical=false"),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    again = optuna.load_study(study_name="mer-sampling", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert len(again.trials) == len(finished) + 2
    assert {t.number: t.params for t in again.trials if t.number in first} == first  # continued, not restarted
    assert json.loads((tmp_path / "trials" / f"{again.trials[-1].number:04d}" / "metrics.json").read_text())["val_uf1"] >= 0


@pytest.mark.slow
def test_a_trial_of_a_killed_worker_is_retried_with_its_parameters_and_not_counted(tiny_set, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = tune_command(tiny_set, tmp_path, 2, "heartbeat_seconds=1", "trainer.max_steps_per_epoch=2")
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until its first trial has drawn its parameters and trains
            try:
                trials = optuna.load_study(study_name="mer-sampling", storage=storage).trials
            except KeyError:  # the study is not created yet
                trials = []
            if trials and trials[0].state == TrialState.RUNNING and "overrides" in trials[0].user_attrs:
                break
            assert worker.poll() is None, "the worker ended before it could be killed"
            time.sleep(0.1)
        else:
            pytest.fail("the worker's first trial never started")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    time.sleep(4.5)  # more than 3 heartbeats: the trial is stale now
    done = subprocess.run([*command, "final_test=true"], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    study = optuna.load_study(study_name="mer-sampling", storage=storage)
    killed, retry = study.trials[0], study.trials[1]
    assert killed.state == TrialState.FAIL and killed.params
    assert retry.system_attrs["retry_history"] == [0] and retry.state == TrialState.COMPLETE
    assert retry.params == killed.params  # the same point, run again
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]  # 2 that count
    assert pd.read_csv(tmp_path / "trials.csv")["retry_of"].tolist()[1] == 0
    # the killed trial held nothing back: the study has its n_trials, so the best was tested
    assert json.loads((tmp_path / "final" / "summary.json").read_text())["best_trial"] in (1, 2)
