"""tools/retrain_trials.py: a search's trials retrained with other seeds on the search's own split."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import optuna
import pytest
import yaml

from tests.helpers import load_tool
from tests.test_tune import tiny_set, tune_command  # noqa: F401  (tiny_set is a fixture)

retrain_trials = load_tool("retrain_trials")


@pytest.fixture(scope="module")
def search_dir(tiny_set, tmp_path_factory):  # noqa: F811
    folder = tmp_path_factory.mktemp("search")
    done = subprocess.run(
        tune_command(tiny_set, folder, 2), env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return folder


def test_the_trials_own_seed_reproduces_its_value_and_a_rerun_retrains_nothing(search_dir, tmp_path, monkeypatch, capsys):
    study = optuna.load_study(study_name="mer-sampling", storage=f"sqlite:///{search_dir / 'study.db'}")
    best = max(study.trials, key=lambda t: t.value)
    other = next(t for t in study.trials if t.number != best.number)
    out = tmp_path / "retrained"
    assert retrain_trials.main([str(search_dir), f"{search_dir}:{other.number}", "--seeds", "0-1", "--out", str(out)]) == 0
    values = json.loads((out / "results.json").read_text())
    assert set(values) == {f"{search_dir.name}:{t}:{s}" for t in (best.number, other.number) for s in (0, 1)}
    # the search trained with seed 0: retraining at seed 0 on the same split gives the same value
    assert values[f"{search_dir.name}:{best.number}:0"] == pytest.approx(best.value, abs=1e-9)
    assert values[f"{search_dir.name}:{other.number}:0"] == pytest.approx(other.value, abs=1e-9)
    table = capsys.readouterr().out
    assert f"| {search_dir.name}:{other.number} | {other.value:.3f} |" in table and "± " in table

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was retrained")

    monkeypatch.setattr(retrain_trials, "train_run", no_training)
    assert retrain_trials.main([str(search_dir), "--seeds", "0", "1", "--out", str(out)]) == 0
    assert json.loads((out / "results.json").read_text()) == values


def test_a_missing_trial_or_a_folder_that_is_no_search_is_a_one_line_error(search_dir, tmp_path, capsys):
    assert retrain_trials.main([f"{search_dir}:7", "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {search_dir}: no completed trial 7 (completed: 0, 1)"
    assert retrain_trials.main([str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path}: not a mer.tune search folder (no .hydra/hydra.yaml)"
    assert not (tmp_path / "out").exists()


def test_searches_on_different_splits_are_refused_before_any_training(search_dir, tmp_path, monkeypatch, capsys):
    other = tmp_path / "other_split"
    shutil.copytree(search_dir, other, ignore=shutil.ignore_patterns("trials", "retrained"))
    hydra_file = other / ".hydra" / "hydra.yaml"
    hydra = yaml.safe_load(hydra_file.read_text())
    hydra["hydra"]["overrides"]["task"].append("cv.seed=7")  # other validation subjects
    hydra_file.write_text(yaml.safe_dump(hydra))
    config_file = other / ".hydra" / "config.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["cv"]["seed"] = 7  # what that search's saved configuration says too
    config_file.write_text(yaml.safe_dump(config))

    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking the splits")

    monkeypatch.setattr(retrain_trials, "train_run", no_training)
    assert retrain_trials.main([str(search_dir), str(other), "--seeds", "5", "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {other}: its split differs from {search_dir}'s; compare trials of searches on the same data and split"
    )


def test_defaults_changed_since_the_search_are_pinned_or_refused(search_dir, tmp_path, monkeypatch, capsys):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    older = tmp_path / "older"
    shutil.copytree(search_dir, older, ignore=shutil.ignore_patterns("trials", "retrained"))
    saved_file = older / ".hydra" / "config.yaml"
    saved = OmegaConf.load(saved_file)
    with initialize_config_dir(config_dir=str(retrain_trials.CONFIGS), version_base="1.3"):
        plain = compose("train", overrides=["loss=ce", "schedule=none"])
    saved.loss, saved.schedule = plain.loss, plain.schedule  # as if searched while ce was the default
    OmegaConf.save(saved, saved_file)
    hydra_file = older / ".hydra" / "hydra.yaml"
    hydra_cfg = OmegaConf.load(hydra_file)
    hydra_cfg.hydra.runtime.choices.loss, hydra_cfg.hydra.runtime.choices.schedule = "ce", "none"  # what Hydra chose then
    OmegaConf.save(hydra_cfg, hydra_file)
    seen = []

    def capture(cfg, folder, **kwargs):
        seen.append(cfg)
        return {"val_uf1": 0.5}

    monkeypatch.setattr(retrain_trials, "train_run", capture)
    assert retrain_trials.main([str(older), "--seeds", "3", "--out", str(tmp_path / "out")]) == 0
    assert [(c.loss.name, c.schedule.name) for c in seen] == [("ce", "none")]  # the search's loss, not today's default
    # a default that no group name pins (here the learning rate): refused before any training
    saved.trainer.lr = 0.123
    OmegaConf.save(saved, saved_file)
    seen.clear()
    assert retrain_trials.main([str(older), "--seeds", "4", "--out", str(tmp_path / "out2")]) == 2
    error = capsys.readouterr().err.strip()
    assert (
        error.startswith(f"error: {older}: the defaults changed since this search (trainer.lr: 0.123 -> ") and "\n" not in error
    )
    assert seen == [] and not (tmp_path / "out2" / "results.json").exists()


def test_seed_ranges():
    assert retrain_trials.parse_seeds(["0", "3", "5-7", "3"]) == [0, 3, 5, 6, 7]
