"""tools/replay_pruners.py: an unpruned study replayed through a pruner cuts where the pruner would."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from tests.helpers import load_tool

replay_pruners = load_tool("replay_pruners")

CURVES = [[0.1, 0.2, 0.3], [0.2, 0.3, 0.4], [0.05, 0.1, 0.5], [0.3, 0.35, 0.36]]  # trial 2: a slow start, the best end


def unpruned_study(path: Path, curves=CURVES, prune_last: bool = False) -> Path:
    study = optuna.create_study(study_name="mer-sampling", storage=f"sqlite:///{path}", direction="maximize")
    for k, curve in enumerate(curves):
        trial = study.ask()
        for step, value in enumerate(curve):
            trial.report(value, step)
        pruned = prune_last and k == len(curves) - 1
        study.tell(trial, None if pruned else curve[-1], state=optuna.trial.TrialState.PRUNED if pruned else None)
    return path


def test_a_median_pruner_without_warm_up_cuts_the_slow_starter_and_loses_the_best(tmp_path):
    trials = replay_pruners.unpruned_trials(unpruned_study(tmp_path / "study.db"))
    spent, kept = replay_pruners.replay(trials, replay_pruners.pruner_from_spec("median:2:0", epochs=3))
    assert spent == 3 + 3 + 1 + 3  # trial 2 stood below the median of trials 0 and 1 at its first epoch
    assert (kept.number, kept.value) == (1, 0.4)
    spent, kept = replay_pruners.replay(trials, replay_pruners.pruner_from_spec("median:2:2", epochs=3))
    assert spent == 12 and kept.number == 2  # with 2 warm-up epochs it reaches the epoch where it leads


def test_a_study_with_pruned_trials_is_refused(tmp_path):
    path = unpruned_study(tmp_path / "study.db", prune_last=True)
    with pytest.raises(ValueError, match=r"study\.db: the study has pruned trials; replay a search run with pruner\.name=none"):
        replay_pruners.unpruned_trials(path)


def test_smoothed_curves():
    curve = [0.1, 0.3, 0.2, 0.6]
    assert replay_pruners.smoothed(curve) == curve
    assert replay_pruners.smoothed(curve, "max") == [0.1, 0.3, 0.3, 0.6]
    assert replay_pruners.smoothed(curve, "mean:2") == pytest.approx([0.1, 0.2, 0.25, 0.4])
    assert replay_pruners.smoothed(curve, "ema:0.5") == pytest.approx([0.1, 0.2, 0.2, 0.4])
    for bad in ("ema:0", "ema:x", "mean:0", "median"):
        with pytest.raises(ValueError, match=rf"unknown smoothing '{bad}': expected none, ema:A"):
            replay_pruners.smoothed(curve, bad)


def test_halving_on_the_best_so_far_keeps_a_trial_that_dipped_at_the_rung(tmp_path):
    # trial 2 dips at the first rung (epoch 1) below trials 0 and 1, then ends best
    curves = [[0.1, 0.2, 0.3, 0.3], [0.2, 0.25, 0.4, 0.4], [0.3, 0.1, 0.5, 0.5]]
    trials = replay_pruners.unpruned_trials(unpruned_study(tmp_path / "study.db", curves))
    spent, kept = replay_pruners.replay(trials, replay_pruners.pruner_from_spec("halving:-:1:2", epochs=4))
    assert (spent, kept.number) == (4 + 4 + 2, 1)
    spent, kept = replay_pruners.replay(trials, replay_pruners.pruner_from_spec("halving:-:1:2", epochs=4), smooth="max")
    assert (spent, kept.number, kept.value) == (12, 2, 0.5)  # the trial's own final value, not a smoothed one
