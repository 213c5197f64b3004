"""tools/ablate.py's table from finished runs' metrics.json (no training here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import load_tool

ablate = load_tool("ablate")


def write_run(
    out: Path,
    condition: str,
    seed: int,
    *,
    uf1: float,
    recalls: dict,
    au_f1: float,
    au_f1_tuned: float | None,
    environment: dict | None = None,
) -> None:
    supports = {"happiness": 50, "anger": 14, "contempt": 10}
    metrics = {
        "uf1": uf1,
        "uar": uf1 + 0.01,
        "au_f1": au_f1,
        "per_class": {name: {"f1": 0.0, "recall": recalls[name], "support": supports[name]} for name in supports},
        "folds": [{"fold": 0, "test_uf1": uf1 - 0.02}, {"fold": 1, "test_uf1": uf1 + 0.02}],
    }
    if au_f1_tuned is not None:
        metrics["au_f1_tuned"] = au_f1_tuned
    if environment is not None:
        metrics["environment"] = environment
    target = ablate.run_dir(out, "imbalance", condition, seed)
    target.mkdir(parents=True)
    (target / "metrics.json").write_text(json.dumps(metrics))


def test_the_table_pools_seeds_and_reads_the_two_smallest_classes(tmp_path):
    write_run(
        tmp_path, "ce", 0, uf1=0.26, recalls={"happiness": 0.9, "anger": 0.0, "contempt": 0.0}, au_f1=0.24, au_f1_tuned=0.34
    )
    write_run(
        tmp_path, "ce", 1, uf1=0.30, recalls={"happiness": 0.8, "anger": 0.2, "contempt": 0.1}, au_f1=0.26, au_f1_tuned=0.36
    )
    write_run(
        tmp_path,
        "cri + phased",
        0,
        uf1=0.32,
        recalls={"happiness": 0.7, "anger": 0.5, "contempt": 0.0},
        au_f1=0.17,
        au_f1_tuned=0.35,
    )
    table = ablate.summarise(tmp_path, "imbalance", [0, 1], tuned=True).splitlines()
    assert table[0].startswith("| imbalance | UF1 | UAR | recall, 2 smallest classes | AU F1 | AU F1, validation thresholds |")
    rows = {line.split(" | ")[0].strip("| "): line for line in table[2:]}
    assert set(rows) == {"ce", "cri + phased"}  # conditions without runs are left out
    # ce: UF1 26 and 30 -> 28.0 ± 2.0; minority recall (0 + 0) / 2 and (0.2 + 0.1) / 2 -> 7.5 ± 7.5
    assert rows["ce"] == "| ce | 28.0 ± 2.0 | 29.0 ± 2.0 | 7.5 ± 7.5 | 25.0 ± 1.0 | 35.0 ± 1.0 | 28.0 ± 2.8 | 2 |"
    assert rows["cri + phased"] == "| cri + phased | 32.0 | 33.0 | 25.0 | 17.0 | 35.0 | 32.0 ± 2.0 | 1 |"
    assert "validation thresholds" not in ablate.summarise(tmp_path, "imbalance", [0, 1])


def test_the_environments_of_a_table_are_counted_and_a_mix_is_flagged(tmp_path):
    recalls = {"happiness": 0.9, "anger": 0.0, "contempt": 0.0}
    here = {
        "torch": "2.15.0+cu132",
        "cpu": "AMD EPYC",
        "device": "cpu",
        "data": {"synthetic_set_sha256": "931c30f8cd35" + "0" * 52},
    }
    write_run(tmp_path, "ce", 0, uf1=0.26, recalls=recalls, au_f1=0.2, au_f1_tuned=None, environment=here)
    write_run(tmp_path, "cb", 0, uf1=0.22, recalls=recalls, au_f1=0.2, au_f1_tuned=None, environment=here)
    assert ablate.environments(tmp_path, "imbalance", [0]) == "2 run(s): torch 2.15.0+cu132, AMD EPYC, data 931c30f8cd35"
    write_run(
        tmp_path, "ce", 1, uf1=0.26, recalls=recalls, au_f1=0.2, au_f1_tuned=None, environment={**here, "torch": "2.14.1+cu130"}
    )
    write_run(
        tmp_path, "cb", 1, uf1=0.26, recalls=recalls, au_f1=0.2, au_f1_tuned=None
    )  # written before environments were recorded
    lines = ablate.environments(tmp_path, "imbalance", [0, 1]).splitlines()
    assert lines[0].startswith("warning: the runs of this table trained in more than one environment")
    assert sorted(lines[1:]) == [
        "1 run(s): not recorded (runs before 2026-11-28)",
        "1 run(s): torch 2.14.1+cu130, AMD EPYC, data 931c30f8cd35",
        "2 run(s): torch 2.15.0+cu132, AMD EPYC, data 931c30f8cd35",
    ]
    # since the SIMD level is recorded it is part of the environment: another level rounds differently
    assert (
        ablate.environment_key({"environment": {**here, "cpu_capability": "AVX2"}})
        == "torch 2.15.0+cu132, AMD EPYC (AVX2), data 931c30f8cd35"
    )


def test_paired_differences_are_taken_seed_by_seed_and_a_pair_across_environments_is_starred(tmp_path):
    here = {
        "torch": "2.15.0+cu132",
        "cpu": "AMD EPYC",
        "device": "cpu",
        "data": {"synthetic_set_sha256": "931c30f8cd35" + "0" * 52},
    }
    none = {"happiness": 0.9, "anger": 0.0, "contempt": 0.0}
    some = {"happiness": 0.8, "anger": 0.2, "contempt": 0.1}  # minority recall 15
    write_run(tmp_path, "ce", 0, uf1=0.28, recalls=none, au_f1=0.2, au_f1_tuned=None, environment=here)
    write_run(tmp_path, "ce", 1, uf1=0.25, recalls=none, au_f1=0.2, au_f1_tuned=None, environment=here)
    write_run(tmp_path, "cri + phased", 0, uf1=0.32, recalls=some, au_f1=0.2, au_f1_tuned=None, environment=here)
    write_run(
        tmp_path,
        "cri + phased",
        1,
        uf1=0.24,
        recalls=some,
        au_f1=0.2,
        au_f1_tuned=None,
        environment={**here, "cpu": "Intel Xeon"},
    )
    write_run(tmp_path, "cb", 1, uf1=0.27, recalls=none, au_f1=0.2, au_f1_tuned=None, environment=here)  # seed 0 not finished
    lines = ablate.paired(tmp_path, "imbalance", [0, 1, 2], "ce").splitlines()
    assert lines[0] == "| imbalance, minus ce (UF1 / minority recall) | seed 0 | seed 1 | seed 2 | mean ± std | ahead in UF1 |"
    rows = {line.split(" | ")[0].strip("| "): line for line in lines[2:] if line.startswith("|")}
    assert set(rows) == {"cb", "cri + phased"}  # ce is the reference; focal has no pair
    # +4.0 and -1.0 UF1: mean +1.5, population std 2.5; recall +15 both times
    assert rows["cri + phased"] == "| cri + phased | +4.0 / +15.0 | -1.0 / +15.0* | - | +1.5 ± 2.5 / +15.0 ± 0.0 | 1 of 2 |"
    assert rows["cb"] == "| cb | - | +2.0 / +0.0 | - | +2.0 ± 0.0 / +0.0 ± 0.0 | 1 of 1 |"
    assert lines[-1].startswith("* the two runs of this pair trained in different environments")
    with pytest.raises(ValueError, match="unknown condition 'cross-entropy' of imbalance"):
        ablate.paired(tmp_path, "imbalance", [0], "cross-entropy")


def test_the_record_keeps_runs_of_several_environments_and_pools_them_by_draw(tmp_path):
    here = {
        "torch": "2.15.0+cu132",
        "cpu": "AMD EPYC",
        "device": "cpu",
        "data": {"synthetic_set_sha256": "931c30f8cd35" + "0" * 52},
    }
    none = {"happiness": 0.9, "anger": 0.0, "contempt": 0.0}
    some = {"happiness": 0.8, "anger": 0.2, "contempt": 0.1}  # minority recall 15
    first, second, record = tmp_path / "first", tmp_path / "second", tmp_path / "evidence" / "imbalance.csv"
    write_run(first, "ce", 0, uf1=0.28, recalls=none, au_f1=0.2, au_f1_tuned=None, environment=here)
    write_run(first, "cri + phased", 0, uf1=0.32, recalls=some, au_f1=0.2, au_f1_tuned=None, environment=here)
    assert ablate.export(first, "imbalance", [0, 1], record) == 2
    # another machine, the same seed: a second draw, not a replacement
    there = {**here, "cpu": "Intel Xeon"}
    write_run(second, "ce", 0, uf1=0.25, recalls=none, au_f1=0.2, au_f1_tuned=None, environment=there)
    write_run(second, "cri + phased", 0, uf1=0.24, recalls=some, au_f1=0.2, au_f1_tuned=None, environment=there)
    write_run(second, "cb", 0, uf1=0.30, recalls=some, au_f1=0.2, au_f1_tuned=None, environment=there)
    assert ablate.export(second, "imbalance", [0], record) == 3
    # exporting the first folder again replaces its rows instead of adding them twice
    assert ablate.export(first, "imbalance", [0], record) == 2
    assert len(record.read_text().splitlines()) == 1 + 5
    lines = ablate.pooled(record, "imbalance", "ce").splitlines()
    rows = {line.split(" | ")[0].strip("| "): line for line in lines[2:] if line.startswith("|")}
    assert set(rows) == {"ce", "cri + phased", "cb"}
    # cri: +4.0 and -1.0 UF1 over the two draws; cb ran in one draw only, +5.0
    assert rows["cri + phased"] == "| cri + phased | 2 | 28.0 ± 4.0 | 15.0 ± 0.0 | 2 | +1.5 ± 2.5 | +15.0 ± 0.0 | 1 of 2 |"
    assert rows["cb"] == "| cb | 1 | 30.0 | 15.0 | 1 | +5.0 ± 0.0 | +15.0 ± 0.0 | 1 of 1 |"
    assert rows["ce"] == "| ce | 2 | 26.5 ± 1.5 | 0.0 ± 0.0 | - | - | - | - |"
    assert "environment: torch 2.15.0+cu132, Intel Xeon, data 931c30f8cd35" in lines
    with pytest.raises(FileNotFoundError, match="no-such.csv: no such record"):
        ablate.pooled(tmp_path / "no-such.csv", "imbalance", "ce")
