"""mer-study: the record from run folders, the tables and the paired bootstrap, resume, and the command's errors.

Run folders are written here by mer.engine.experiment.write_outputs, the writer of mer-train's
metrics.json and predictions.csv; one test trains for real, through the subprocess.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mer.cli import PartlyFailed, compose
from mer.engine.compare import paired_bootstrap, paired_differences, paired_table, summary_table, uf1_of_confusions
from mer.engine.experiment import write_outputs
from mer.engine.metrics import classification_metrics
from mer.engine.predictions import Predictions
from mer.engine.record import environment_key, merge_records, read_record, run_rows, write_record
from mer.engine.reports import named_metrics
from mer.study import Run, Study, plan_text, read_predictions, run, run_dir, train_overrides

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["happiness", "surprise", "anger", "contempt"]
AUS = [4, 12]
# 40 clips of 10 subjects (fold = subject % 5); anger (6 clips) and contempt (4) are the two smallest classes
TRUTH = [0] * 18 + [1] * 12 + [2] * 6 + [3] * 4
SUBJECTS = [k % 10 for k in range(40)]
HERE = {
    "torch": "2.14.1+cu130",
    "cpu": "AMD EPYC",
    "cpu_capability": "AVX512",
    "device": "cpu",
    "data": {"synthetic_set_sha256": "05f9ba0e8dbd" + "0" * 52},
}


def write_run(folder: Path, predicted: list[int], *, environment: dict | None = HERE, seconds: float | None = 60.0) -> Path:
    """A finished 5-fold run folder as mer-train writes it, with these predicted classes."""
    pooled, pooled_folds, summaries = Predictions(), [], []
    for fold in range(5):
        test = [k for k in range(40) if SUBJECTS[k] % 5 == fold]
        part = Predictions(
            clip_ids=[f"sub{SUBJECTS[k]:02d}_{k:02d}" for k in test],
            subjects=[f"sub{SUBJECTS[k]:02d}" for k in test],
            true=[TRUTH[k] for k in test],
            probs=[np.eye(len(CLASSES))[predicted[k]].tolist() for k in test],
            au_true=[[float(TRUTH[k] == 0), float(k % 3 == 0)] for k in test],
            au_probs=[[0.8 if TRUTH[k] == 0 else 0.2, 0.6 if k % 2 else 0.3] for k in test],
        )
        m = part.metrics(len(CLASSES))
        summaries.append(
            {"fold": fold, "val_uf1": 0.3, "test_uf1": m["uf1"], "test_uar": m["uar"], "test_accuracy": m["accuracy"]}
            | {"test_au_f1": m["au_f1"], "test_au_f1_tuned": None}
        )
        pooled.extend(part)
        pooled_folds += [fold] * len(test)
    result = named_metrics(pooled.metrics(len(CLASSES)), CLASSES, AUS) | {
        "val_uf1": 0.3,
        "folds": summaries,
        "protocol": "kfold",
        "classes": CLASSES,
    }
    if environment is not None:
        result["environment"] = environment
    folder.mkdir(parents=True, exist_ok=True)
    write_outputs(folder, result, pooled, pooled_folds, [], CLASSES, AUS, summaries)
    if seconds is not None:
        (folder / "study.json").write_text(json.dumps({"wall_seconds": seconds, "command": []}))
    return folder


def guesses(right: int, seed: int = 0) -> list[int]:
    """Predictions right on the first ``right`` clips (in a fixed shuffled order), wrong on the others."""
    order = np.random.default_rng(seed).permutation(40)
    predicted = list(TRUTH)
    for k in order[right:]:
        predicted[k] = (TRUTH[k] + 1) % len(CLASSES)
    return predicted


def test_a_finished_run_gives_a_row_per_fold_and_a_pooled_row(tmp_path):
    predicted = guesses(24)
    run_folder = write_run(tmp_path / "ce" / "seed0", predicted)
    rows = pd.DataFrame(run_rows(run_folder, study="imbalance", condition="ce", seed=0))
    assert rows["fold"].tolist() == ["0", "1", "2", "3", "4", "pooled"]
    metrics = json.loads((run_folder / "metrics.json").read_text())
    pooled = rows.iloc[-1]
    assert pooled["uf1"] == metrics["uf1"] and pooled["au_auc"] == metrics["au_auc"] and pooled["au_f1"] == metrics["au_f1"]
    # the two smallest classes by support: anger and contempt; their mean recall by hand
    recall = [np.mean([p == t for p, t in zip(predicted, TRUTH) if t == c]) for c in (2, 3)]
    assert pooled["minority_recall"] == pytest.approx(np.mean(recall))
    assert rows["uf1"].iloc[:5].tolist() == [f["test_uf1"] for f in metrics["folds"]]
    # what metrics.json does not keep per fold is computed from predictions.csv: fold 0's clips by hand
    fold0 = [k for k in range(40) if SUBJECTS[k] % 5 == 0]
    present = [c for c in (2, 3) if any(TRUTH[k] == c for k in fold0)]
    by_hand = np.mean([np.mean([predicted[k] == c for k in fold0 if TRUTH[k] == c]) for c in present])
    assert rows.iloc[0]["minority_recall"] == pytest.approx(by_hand)
    assert pooled["wall_seconds"] == 60.0 and pooled["source"] == str(run_folder.resolve())
    assert (pooled["torch"], pooled["cpu"], pooled["data"][:12]) == ("2.14.1+cu130", "AMD EPYC (AVX512)", "05f9ba0e8dbd")
    assert environment_key(metrics) == "torch 2.14.1+cu130, AMD EPYC (AVX512), data 05f9ba0e8dbd"


def test_uf1_of_confusions_is_the_uf1_of_classification_metrics():
    rng = np.random.default_rng(0)
    for _ in range(20):
        true, pred = rng.integers(0, 5, 30), rng.integers(0, 4, 30)  # class 4 never predicted; some absent
        confusion = np.array(classification_metrics(true, pred, 6)["confusion"], dtype=float)
        assert uf1_of_confusions(confusion) == pytest.approx(classification_metrics(true, pred, 6)["uf1"])


def test_the_paired_bootstrap_holds_for_a_better_condition_and_straddles_zero_for_the_same_predictions():
    clips = [f"c{k}" for k in range(40)]
    truth = [CLASSES[t] for t in TRUTH]
    worse = [CLASSES[p] for p in guesses(20)]
    better = list(truth)  # right on every clip
    observed, low, high = paired_bootstrap([(clips, truth, better, worse)], resamples=500, seed=0)
    assert low > 0 and low <= observed <= high
    observed, low, high = paired_bootstrap([(clips, truth, worse, worse)], resamples=500, seed=0)
    assert low <= 0 <= high and observed == 0
    # seeded: the same interval again
    assert paired_bootstrap([(clips, truth, better, worse)], resamples=200, seed=3) == paired_bootstrap(
        [(clips, truth, better, worse)], resamples=200, seed=3
    )


def study_record(tmp_path: Path) -> pd.DataFrame:
    """ce right on 20 clips, "cri + phased" on 34 (each seed), focal the same predictions as ce."""
    rows = []
    for seed in (0, 1):
        for condition, right in (("ce", 20), ("cri + phased", 34), ("focal", 20)):
            folder = write_run(tmp_path / condition / f"seed{seed}", guesses(right, seed=seed))
            rows += run_rows(folder, study="imbalance", condition=condition, seed=seed)
    return merge_records(read_record(tmp_path / "none.csv"), pd.DataFrame(rows))


def test_paired_differences_by_seed_by_fold_and_over_clips(tmp_path):
    record = study_record(tmp_path)
    paired = paired_differences(record, "ce", ["ce", "cri + phased", "focal"], predictions=read_predictions, resamples=500)
    assert paired["condition"].tolist() == ["cri + phased", "focal"]  # the reference is not compared with itself
    pooled = record[record["fold"] == "pooled"].set_index(["condition", "seed"])["uf1"]
    cri = paired.iloc[0]
    assert cri["d_uf1"] == pytest.approx([100 * (pooled["cri + phased", s] - pooled["ce", s]) for s in (0, 1)])
    assert len(cri["d_fold_uf1"]) == 10 and cri["holds"] and cri["low"] > 0
    focal = paired.iloc[1]
    assert focal["d_uf1"] == [0.0, 0.0] and not focal["holds"] and focal["low"] <= 0 <= focal["high"]
    table = paired_table(paired, "imbalance", "ce").splitlines()
    assert table[0].startswith(
        "| imbalance: minus ce | pairs | UF1, by seed | UF1, by fold | UF1, 95% interval over clips | holds |"
    )
    assert re.fullmatch(
        r"\| cri \+ phased \| 2 \| \+\d+\.\d ± \d+\.\d \| \+\d+\.\d ± \d+\.\d \| \+\d+\.\d to \+\d+\.\d \| yes \|.*", table[2]
    )
    assert "| focal | 2 | +0.0 ± 0.0 | +0.0 ± 0.0 | +0.0 to +0.0 | no |" in table[3]
    # without the run folders there is no interval, and the rest stays
    gone = paired_differences(record, "ce", ["cri + phased"], predictions=lambda source: None)
    assert np.isnan(gone.iloc[0]["low"]) and gone.iloc[0]["holds"] is None
    assert "| - | - |" in paired_table(gone, "imbalance", "ce")


def test_the_record_merges_machines_and_reads_the_first_layout(tmp_path):
    here = write_run(tmp_path / "a", guesses(20))
    there = write_run(tmp_path / "b", guesses(30), environment={**HERE, "cpu": "Intel Xeon"})
    record = merge_records(read_record(tmp_path / "record.csv"), pd.DataFrame(run_rows(here, study="s", condition="ce", seed=0)))
    record = merge_records(record, pd.DataFrame(run_rows(there, study="s", condition="ce", seed=0)))
    assert len(record) == 12  # another environment is another draw: kept beside the first
    record = merge_records(record, pd.DataFrame(run_rows(here, study="s", condition="ce", seed=0)))
    assert len(record) == 12  # the same run again replaces its rows
    write_record(record, tmp_path / "record.csv")
    again = read_record(tmp_path / "record.csv")
    assert again[RECORD_KEYS].equals(record[RECORD_KEYS]) and np.allclose(again["uf1"], record["uf1"].round(4))
    # the first layout (tools/ablate.py --export): docs/evidence/imbalance_v3.csv gives the figures of docs/results.md
    first = read_record(ROOT / "docs" / "evidence" / "imbalance_v3.csv")
    assert set(first["fold"]) == {"pooled"} and "first machine (CPU not recorded)" in set(first["cpu"])
    conditions = ["ce", "focal", "ldam + drw", "cb", "cri + phased"]
    table = summary_table(first, "imbalance", conditions).splitlines()
    assert table[2].startswith("| ce | 8 | 27.1 ± 2.1 | ") and "| 1.2 ± 2.2 |" in table[2]
    paired = paired_table(paired_differences(first, "ce", conditions), "imbalance", "ce")
    assert "| cri + phased | 6 | +3.0 ± 3.1 | - | - | - | +9.0 ± 5.2 | 5 of 6 |" in paired
    assert "| cb | 3 | -5.2 ± 3.9 | - | - | - | +7.8 ± 5.7 | 1 of 3 |" in paired


RECORD_KEYS = ["study", "condition", "seed", "fold", "torch", "cpu", "data"]


def fake_trainer(calls: list, *, code: int = 0):
    """A runner that writes a finished run where the command's hydra.run.dir says, no training:
    "cri + phased" right on 34 clips, the others on 20."""

    def runner(command: list[str], log_file: Path) -> int:
        calls.append(command)
        folder = Path(next(o for o in command if o.startswith("hydra.run.dir=")).split("=", 1)[1])
        seed = int(next(o for o in command if o.startswith("seed=")).split("=", 1)[1])
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.write_text("mer-train: error: something wrong\n" if code else "done\n")
        if code == 0:
            write_run(folder, guesses(34 if folder.parent.name == "cri_p_phased" else 20, seed=seed), seconds=None)
        return code

    return runner


def study_config(out: Path, *extra: str):
    return compose("study", ["study=imbalance", "conditions=[ce,cri + phased]", "seeds=[0,1]", f"out={out}", *extra])


def test_a_study_runs_what_is_not_finished_and_resumes(tmp_path, capsys):
    write_run(run_dir(tmp_path, "imbalance", "ce", 0), guesses(20, seed=0), seconds=600)  # finished before
    calls = []
    record = run(study_config(tmp_path, "reference=ce"), ["trainer.epochs=2"], runner=fake_trainer(calls))
    printed = capsys.readouterr().out
    assert printed.startswith("imbalance: 3 of 4 runs to do (2 conditions x 2 seeds; 1 finished)")
    assert "cri + phased: 10 min a run (the mean of the study's 1 finished run(s))" in printed
    done = [(c[c.index("-m") + 1], Path(c[-1].split("=", 1)[1]).relative_to(tmp_path).as_posix()) for c in calls]
    assert done == [
        ("mer.train", "imbalance/cri_p_phased/seed0"),
        ("mer.train", "imbalance/ce/seed1"),
        ("mer.train", "imbalance/cri_p_phased/seed1"),
    ]
    first = calls[0]
    assert first[3:] == [
        "cv=kfold",
        "cv.folds=5",
        "trainer.progress=false",
        "loss=cri",
        "schedule=phased",
        "trainer.epochs=2",
        "seed=0",
        "cv.seed=0",
        f"hydra.run.dir={tmp_path / 'imbalance' / 'cri_p_phased' / 'seed0'}",
    ]
    saved = read_record(tmp_path / "imbalance" / "record.csv")
    assert len(saved) == len(record) == 4 * 6 and set(saved["condition"]) == {"ce", "cri + phased"}
    tables = (tmp_path / "imbalance" / "tables.md").read_text()
    assert "| cri + phased | 2 |" in tables and "| yes |" in tables and (tmp_path / "imbalance" / "paired.png").stat().st_size
    # again: every run is finished, nothing is trained; the tables come back the same
    calls.clear()
    run(study_config(tmp_path, "reference=ce"), ["trainer.epochs=2"], runner=fake_trainer(calls))
    assert calls == [] and capsys.readouterr().out.startswith("imbalance: 0 of 4 runs to do")
    assert (tmp_path / "imbalance" / "tables.md").read_text() == tables
    # report=true trains nothing even when runs are missing
    run(study_config(tmp_path, "seeds=[0,1,2]", "report=true"), [], runner=fake_trainer(calls))
    assert calls == []


def test_a_killed_run_continues_and_a_failed_one_is_named(tmp_path):
    ce = Study.from_config(compose("study", ["study=imbalance"]).study).find("ce")
    half = run_dir(tmp_path, "imbalance", "ce", 0)
    (half / "fold0").mkdir(parents=True)
    assert "resume=true" not in Run(ce, 0, half).command([])
    (half / "fold0" / "last.pt").write_bytes(b"")
    assert Run(ce, 0, half).command([])[-1] == "resume=true"
    # a configuration error stops the study at its first run, in one line
    with pytest.raises(ValueError, match=r"ce, seed 0: exit code 2: mer-train: error: something wrong"):
        run(study_config(tmp_path), [], runner=fake_trainer([], code=2))
    # any other failure: the other runs go on, then one line names the failed ones
    calls = []
    with pytest.raises(PartlyFailed, match=r"4 of 4 runs failed: ce, seed 0: exit code 1"):
        run(study_config(tmp_path), [], runner=fake_trainer(calls, code=1))
    assert len(calls) == 4


def test_the_classical_floor_runs_on_the_same_folds_and_times_are_guessed_per_condition(tmp_path):
    study = Study.from_config(compose("study", ["study=inputs"]).study)
    floor = study.find("linear floor")
    command = Run(floor, 2, tmp_path / "floor").command(["data=dfme", "data.annotations=a.csv", "trainer.epochs=2"])
    assert command[1:] == [
        "-m",
        "mer.baseline",
        "cv=kfold",
        "cv.folds=5",
        "data=dfme",
        "data.annotations=a.csv",
        "seed=2",
        "cv.seed=2",
        f"hydra.run.dir={tmp_path / 'floor'}",
    ]
    picked = study.pick(["flow_strain, frame_cnn", "flow_x3d_tiny"])
    runs = [Run(c, 0, run_dir(tmp_path, "inputs", c.name, 0)) for c in picked]
    text = plan_text(study, runs, read_record(tmp_path / "none.csv"))
    assert "estimated time: 1 h 50 min to go" in text
    assert "flow_strain, frame_cnn: 20 min a run (minutes_per_run of study/inputs.yaml)" in text
    assert "flow, x3d_tiny: 1 h 30 min a run" in text


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["study=nope"], "mer-study: error: In 'study': Could not find 'study/nope'; valid choices for study: heads, imbalance"),
        (
            ["study=heads", "conditions=[FER only,gates]"],
            "mer-study: error: unknown condition 'gates' of study heads; valid choices: AU head + gates, FER only, AU head, ",
        ),
    ],
)
def test_a_wrong_study_or_condition_is_one_line_and_exit_code_2(tmp_path, overrides, message):
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "MER_DEBUG")}
    done = subprocess.run(
        [sys.executable, "-m", "mer.study", *overrides, f"out={tmp_path}"], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and done.stderr.strip().splitlines()[-1].startswith(message), done.stderr
    assert not list(tmp_path.glob("*/*/seed*"))  # refused before any run


def test_a_key_the_study_sets_and_an_unknown_reference_are_refused_before_any_run(tmp_path):
    assert train_overrides(["study=imbalance", "seeds=[0]", "trainer.epochs=2", "+experiment=ststnet"]) == [
        "trainer.epochs=2",
        "+experiment=ststnet",
    ]
    with pytest.raises(ValueError, match=r"^seed=3: seed is set by the study for each run \(seeds=\[\.\.\.\]\)$"):
        train_overrides(["study=imbalance", "seed=3"])
    calls = []
    with pytest.raises(ValueError, match="unknown condition 'cross-entropy' of study imbalance; valid choices: ce, focal"):
        run(study_config(tmp_path, "reference=cross-entropy"), [], runner=fake_trainer(calls))
    with pytest.raises(ValueError, match=r"condition 'ce': .*Could not override 'trainer.epoch'"):
        run(study_config(tmp_path), ["trainer.epoch=2"], runner=fake_trainer(calls))
    assert calls == []


@pytest.mark.slow
def test_a_tiny_study_trains_end_to_end_and_is_not_run_twice(tmp_path):
    from mer.data.synthetic import generate

    annotations = generate(tmp_path / "data", n_subjects=8, clips_per_subject=5, size=64, clip_seconds=0.3, seed=1, workers=2)
    command = [sys.executable, "-m", "mer.study", "study=imbalance", "conditions=[ce]", "seeds=[0]", f"out={tmp_path / 'out'}"]
    command += ["data=dfme", f"data.annotations={annotations}", "data.crop_size=32", "data.motion.size=64"]
    command += ["trainer.epochs=1", "trainer.num_workers=0", "trainer.batch_size=8"]
    env = {**os.environ, "MER_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("imbalance: 1 of 1 runs to do (1 condition x 1 seed; 0 finished)")
    record = read_record(tmp_path / "out" / "imbalance" / "record.csv")
    assert record["fold"].tolist() == ["0", "1", "2", "3", "4", "pooled"]
    metrics = json.loads((tmp_path / "out" / "imbalance" / "ce" / "seed0" / "metrics.json").read_text())
    assert record.iloc[-1]["uf1"] == pytest.approx(metrics["uf1"], abs=1e-4) and record.iloc[-1]["wall_seconds"] > 0
    assert "| ce | 1 |" in (tmp_path / "out" / "imbalance" / "tables.md").read_text()
    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0 and again.stdout.startswith("imbalance: 0 of 1 runs to do"), again.stderr[-3000:]


def test_the_summary_shows_the_mean_per_au_auc_as_a_fraction_and_a_dash_without_aus():
    rows = [
        {
            "study": "s",
            "condition": c,
            "seed": k,
            "fold": "pooled",
            "uf1": 0.5,
            "uar": 0.5,
            "minority_recall": 0.4,
            "au_f1": f,
            "au_auc": a,
        }
        for c, k, f, a in (("gates", 0, 0.7, 0.90), ("gates", 1, 0.7, 0.88), ("fer", 0, np.nan, np.nan))
    ]
    table = summary_table(pd.DataFrame(rows), "s", ["gates", "fer"]).splitlines()
    assert table[0].endswith("| AU F1 | mean per-AU AUC | UF1 of single folds |") and table[1].count("|---") == 8
    assert "| 70.0 ± 0.0 | 0.890 ± 0.010 | - |" in table[2]
    assert "| - | - | - |" in table[3]  # FER only: no AU head, no AUC
