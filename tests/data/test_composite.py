"""Composite protocols: several sets read as one, subjects kept apart, folds by namespaced subject."""

from __future__ import annotations

from pathlib import Path

import pytest

from mer.cli import compose
from mer.data.build import class_names, data_provenance, load_records
from mer.data.composite import dataset_specs, read_composite
from mer.data.splits import make_folds
from tests.helpers import CASME2_HEADER, SAMM_HEADER, SAMM_PREAMBLE, index_folder, write_workbook

CSV_HEADER = "subject,clip,path,onset,apex,offset,emotion,aus,fps\n"


def csv_set(folder: Path, rows: list[tuple[str, str, str]]) -> Path:
    """A csv-format set of (subject, clip, emotion) rows, each clip a 10-frame folder."""
    lines = []
    for subject, clip, emotion in rows:
        index_folder(folder / subject / clip, range(10))
        lines.append(f"{subject},{clip},{subject}/{clip},1,4,8,{emotion},12,200\n")
    path = folder / "clips.csv"
    path.write_text(CSV_HEADER + "".join(lines))
    return path


@pytest.fixture
def two_sets(tmp_path):
    """Sets a and b whose subjects have the same names (s1, s2), as two data sets' numbering would."""
    a = csv_set(
        tmp_path / "a",
        [("s1", "s1c1", "happiness"), ("s1", "s1c2", "disgust"), ("s2", "s2c1", "surprise"), ("s2", "s2c2", "others")],
    )
    b = csv_set(
        tmp_path / "b",
        [("s1", "s1c1", "sadness"), ("s2", "s2c1", "happiness"), ("s2", "s2c2", "others"), ("s3", "s3c1", "others")],
    )
    return {"a": {"format": "csv", "annotations": str(a)}, "b": {"format": "csv", "annotations": str(b)}}


def test_same_subject_names_in_two_sets_stay_apart(two_sets):
    records = read_composite(dataset_specs(two_sets), label_map="megc3")
    assert [r.clip_id for r in records] == ["a/s1c1", "a/s1c2", "a/s2c1", "b/s1c1", "b/s2c1"]
    assert sorted({r.subject for r in records}) == ["a/s1", "a/s2", "b/s1", "b/s2"]
    assert [r.dataset for r in records] == ["a", "a", "a", "b", "b"] and {r.source for r in records} == {"csv"}
    assert [r.label for r in records] == [1, 0, 2, 0, 1]  # megc3: positive, negative, surprise, negative, positive
    # what each set's label map left out, and the whole
    assert records.parts["a"].excluded == {"others": 1} and records.parts["b"].excluded == {"others": 2}
    assert records.excluded == {"others": 3}
    assert records.composition() == {
        "a": {"clips": 3, "subjects": 2, "excluded": {"others": 1}, "skipped": 0},
        "b": {"clips": 2, "subjects": 2, "excluded": {"others": 2}, "skipped": 0},  # b/s3 had only an excluded clip
    }


def test_loso_over_a_composite_leaves_out_one_set_s_subject(two_sets):
    records = read_composite(dataset_specs(two_sets), label_map="megc3")
    folds = make_folds(records, "loso", val_fraction=0.34, seed=0)
    assert len(folds) == 4  # a/s1, a/s2, b/s1, b/s2: the two s1 are two people
    for fold in folds:
        subjects = {part: {records[i].subject for i in getattr(fold, part)} for part in ("train", "val", "test")}
        (test_subject,) = subjects["test"]
        assert test_subject not in subjects["train"] | subjects["val"]  # never trained on, never selects an epoch
        assert subjects["val"] and not subjects["val"] & subjects["train"]
        assert len(fold.train) + len(fold.val) + len(fold.test) == len(records)
    assert sorted(s for f in folds for s in {records[i].subject for i in f.test}) == ["a/s1", "a/s2", "b/s1", "b/s2"]


def test_the_composite_config_reads_each_set_and_records_its_provenance(two_sets):
    cfg = compose(
        "train",
        ["data=composite", f"+data.datasets.a={_override(two_sets['a'])}", f"+data.datasets.b={_override(two_sets['b'])}"],
    )
    records = load_records(cfg.data)
    assert len(records) == 5 and list(records.parts) == ["a", "b"]
    provenance = data_provenance(cfg.data, records)
    assert set(provenance["datasets"]) == {"a", "b"} and len(provenance["annotations_sha256"]) == 64
    assert provenance["datasets"]["b"]["annotations"] == two_sets["b"]["annotations"]
    assert provenance["datasets"]["b"]["excluded"] == {"others": 2}


def test_without_a_label_map_a_composite_takes_the_own_map_its_sets_share(two_sets):
    records = read_composite(dataset_specs(two_sets))  # csv and csv: dfme7, which leaves out others
    assert [r.emotion for r in records] == ["happiness", "disgust", "surprise", "sadness", "happiness"]
    assert [r.label for r in records] == [0, 5, 6, 1, 0] and records.excluded == {"others": 3}
    overrides = [f"+data.datasets.{name}={_override(entry)}" for name, entry in two_sets.items()]
    assert class_names(compose("train", ["data=composite", "data.label_map=null", *overrides]).data)[:2] == [
        "happiness",
        "sadness",
    ]
    mixed = dataset_specs({"a": two_sets["a"], "b": {"format": "casme2", "annotations": "x.xlsx"}})
    with pytest.raises(ValueError, match=r"the sets' own maps differ \(a: dfme7, b: casme2_5\): give the composite's one map"):
        read_composite(mixed)


def _override(entry: dict) -> str:
    return "{" + ",".join(f"{k}:'{v}'" for k, v in entry.items()) + "}"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"format": "casme4", "annotations": "x.xlsx"},
            r"^data\.datasets\.b: unknown annotation format 'casme4'; valid choices: .*casme2.*samm",
        ),
        ({"format": "samm", "annotations": "???"}, r"^data\.datasets\.b\.annotations is not set"),
        ({"format": "samm"}, r"^data\.datasets\.b\.annotations is not set"),
        ({"annotations": "x.csv"}, r"^data\.datasets\.b\.format is not set; valid choices: .*csv"),
        (
            {"format": "csv", "annotations": "x.csv", "label_map": "dfme7"},
            r"^data\.datasets\.b: unknown key 'label_map'; valid keys: format, annotations",
        ),
        ({"format": "samm", "annotations": "x.xlsx", "root": "???"}, r"^data\.datasets\.b\.root is not set"),
    ],
)
def test_a_wrong_set_is_one_line_naming_it(two_sets, entry, message):
    with pytest.raises(ValueError, match=message) as caught:
        dataset_specs({"a": two_sets["a"], "b": entry})
    assert "\n" not in str(caught.value)
    with pytest.raises(ValueError, match=r"^data\.datasets is not set"):
        dataset_specs({})


def test_a_set_inherits_the_composite_s_strict_and_fps(two_sets):
    a, b = dataset_specs({"a": two_sets["a"], "b": {**two_sets["b"], "strict": True, "fps": 90}}, strict=False, fps=30)
    assert (a.strict, a.fps, b.strict, b.fps) == (False, 30, True, 90.0)


def test_megc2019_preset_reads_smic_hs_casme2_and_samm_under_megc3(tmp_path):
    cfg = compose("train", ["data=megc2019", "cv=loso"])
    assert list(cfg.data.datasets) == ["smic", "casme2", "samm"] and cfg.data.label_map == "megc3"
    assert {k: v.format for k, v in cfg.data.datasets.items()} == {"smic": "smic", "casme2": "casme2", "samm": "samm"}
    with pytest.raises(ValueError, match=r"^data\.datasets\.smic\.annotations is not set"):
        load_records(cfg.data)
    # SMIC: clips labelled by their folders; the preset reads the HS folder, not VIS beside it
    smic = tmp_path / "SMIC_all_cropped"
    for modality, subject, emotion, clip in [
        ("HS", "s1", "negative", "s1_ne_01"),
        ("HS", "s1", "positive", "s1_po_01"),
        ("HS", "s2", "surprise", "s2_sur_01"),
        ("VIS", "s1", "negative", "s1_ne_01"),
    ]:
        index_folder(smic / modality / subject / "micro" / emotion / clip, range(101, 111), "image{:06d}.jpg")
    # CASME II: its repression is negative, its others left out
    casme2_root = tmp_path / "CASME2_RAW_selected"
    casme2_rows = [
        [1, "EP02_01f", None, 46, 50, 59, None, "12", "happiness"],
        [1, "EP03_02", None, 2, 5, 9, None, "4", "others"],
        [2, "EP04_01", None, 1, 4, 8, None, "14", "repression"],
    ]
    for subject, clip, frames in [
        ("sub01", "EP02_01f", range(46, 60)),
        ("sub01", "EP03_02", range(1, 20)),
        ("sub02", "EP04_01", range(1, 10)),
    ]:
        index_folder(casme2_root / subject / clip, frames)
    casme2 = write_workbook(tmp_path / "CASME2-coding-20140508.xlsx", {"Sheet1": [CASME2_HEADER, *casme2_rows]})
    # SAMM: header on row 13; its Other left out
    samm_root = tmp_path / "SAMM"
    samm_rows = [
        [6, "006_1_2", 1, 5562, 5570, 5578, 17, "Micro - 1/2", "1+2", None, "Surprise", 6],
        [6, "006_1_3", 1, 5563, -1, 5575, 13, "Micro - 1/2", "4", None, "Contempt", 2],
        [7, "007_3_1", 3, 101, 110, 120, 20, "Micro - 1/2", "12", None, "Other", 7],
    ]
    for clip, frames in [("006_1_2", range(5560, 5580)), ("006_1_3", range(5560, 5580))]:
        index_folder(samm_root / "006" / clip, frames, pattern="006_{:05d}.jpg")
    index_folder(samm_root / "007" / "007_3_1", range(100, 122), pattern="007_{:05d}.jpg")
    samm = write_workbook(tmp_path / "SAMM_Micro_FACS_Codes_v2.xlsx", {"Sheet1": [*SAMM_PREAMBLE, SAMM_HEADER, *samm_rows]})
    casme2_and_samm = [
        f"data.datasets.casme2.annotations={casme2}",
        f"data.datasets.casme2.root={casme2_root}",
        f"data.datasets.samm.annotations={samm}",
        f"data.datasets.samm.root={samm_root}",
    ]
    cfg = compose("train", ["data=megc2019", f"data.datasets.smic.annotations={smic / 'HS'}", *casme2_and_samm])
    records = load_records(cfg.data)
    assert [(r.clip_id, r.subject, r.dataset, r.emotion, r.label) for r in records] == [
        ("smic/HS/s1/s1_ne_01", "smic/s1", "smic", "negative", 0),
        ("smic/HS/s1/s1_po_01", "smic/s1", "smic", "positive", 1),
        ("smic/HS/s2/s2_sur_01", "smic/s2", "smic", "surprise", 2),
        ("casme2/sub01/EP02_01f", "casme2/sub01", "casme2", "happiness", 1),
        ("casme2/sub02/EP04_01", "casme2/sub02", "casme2", "repression", 0),
        ("samm/006_1_2", "samm/006", "samm", "surprise", 2),
        ("samm/006_1_3", "samm/006", "samm", "contempt", 0),
    ]
    assert {r.fps for r in records if r.dataset == "smic"} == {100.0}  # HS
    assert records.composition() == {
        "smic": {"clips": 3, "subjects": 2, "excluded": {}, "skipped": 0},
        "casme2": {"clips": 2, "subjects": 2, "excluded": {"others": 1}, "skipped": 0},
        "samm": {"clips": 2, "subjects": 1, "excluded": {"others": 1}, "skipped": 0},  # samm/007 had only an excluded clip
    }
    # without one set
    without_smic = compose("train", ["data=megc2019", "~data.datasets.smic", *casme2_and_samm])
    assert [r.dataset for r in load_records(without_smic.data)] == ["casme2"] * 2 + ["samm"] * 2
