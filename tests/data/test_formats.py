"""Annotation readers on small fixture files in each real layout."""

import logging
import warnings
from pathlib import Path

import pytest

import mer.configs
from mer.cli import compose
from mer.data.build import class_names
from mer.data.dataset import ClipDataset
from mer.data.formats import default_label_map, list_formats, read_annotations
from mer.data.labels import get_label_map
from mer.data.records import AnnotationError
from mer.data.samplers import build_sampler
from mer.data.video import open_video
from tests.helpers import (
    CASME2_HEADER,
    SAMM_HEADER,
    SAMM_PREAMBLE,
    casme2_folders,
    index_folder,
    index_video,
    read_index,
    write_workbook,
)


@pytest.fixture
def casme2(tmp_path):
    root = casme2_folders(tmp_path / "CASME2_RAW_selected")
    rows = [
        [1, "EP02_01f", None, 46, 59, 86, None, "1+R2", "happiness"],
        [1, "EP03_02", None, 10, "/", 20, None, "4+7", "repression"],
        ["02", "EP02_01f", None, 101, 110, 120, None, "AU12+(25)", "disgust"],
    ]
    return write_workbook(tmp_path / "CASME2-coding-20140508.xlsx", {"Sheet1": [CASME2_HEADER] + rows}), root


def test_formats_are_registered():
    formats = {"csv", "dfme", "casme2", "samm", "casme3", "casme_sq", "samm_lv", "smic", "smic_e", "mmew", "4dme"}
    assert formats <= set(list_formats())


def test_casme2_frame_numbers_become_positions(casme2):
    path, root = casme2
    records = read_annotations(path, format="casme2", root=root, label_map="casme2_5")
    assert [r.clip_id for r in records] == ["sub01/EP02_01f", "sub01/EP03_02", "sub02/EP02_01f"]
    first = records[0]
    assert (first.subject, first.onset, first.apex, first.offset, first.first_frame) == ("sub01", 0, 13, 40, 46)
    assert first.n_frames == 41 and first.fps == 200.0 and first.source == "casme2"
    assert first.au_string == "1+R2" and first.au_numbers == {1, 2}
    # the frames decoded at the sampled positions are the annotated frame numbers
    sampler = build_sampler("keyframe", num_frames=5, jitter=0)
    indices = sampler(first, train=False)
    frames = ClipDataset(records, sampler).load_frames(first, indices)
    assert [read_index(f) for f in frames] == [46 + i for i in indices]
    assert 46 in [read_index(f) for f in frames] and 59 in [read_index(f) for f in frames]


def test_missing_apex_falls_back_to_midpoint(casme2):
    path, root = casme2
    record = read_annotations(path, format="casme2", root=root, label_map="casme2_5")[1]
    assert record.apex_estimated and record.apex == (9 + 19) // 2
    assert not read_annotations(path, format="casme2", root=root, label_map="casme2_5")[0].apex_estimated


def test_label_maps_exclude_or_merge(casme2):
    path, root = casme2
    dfme = read_annotations(path, format="casme2", root=root, label_map="dfme7")
    assert [r.emotion for r in dfme] == ["happiness", "disgust"]
    assert dfme.excluded == {"repression": 1}
    megc = read_annotations(path, format="casme2", root=root, label_map="megc3")
    assert [r.label for r in megc] == [1, 0, 0]  # positive, negative (repression), negative (disgust)


@pytest.fixture
def casme2_all(tmp_path):
    """A clip of each emotion CASME II writes: its five classes, then sadness and fear."""
    root = tmp_path / "CASME2_RAW_selected"
    rows = []
    for i, emotion in enumerate(["happiness", "disgust", "repression", "surprise", "others", "sadness", "fear", "fear"]):
        index_folder(root / "sub01" / f"EP{i:02d}_01", range(1, 6))
        rows.append([1, f"EP{i:02d}_01", None, 1, 3, 5, None, "4", emotion])
    return write_workbook(tmp_path / "CASME2-coding-20140508.xlsx", {"Sheet1": [CASME2_HEADER] + rows}), root


def test_the_default_label_map_is_the_formats_own_and_what_it_leaves_out_is_logged(casme2_all, caplog):
    path, root = casme2_all
    with caplog.at_level(logging.WARNING, logger="mer.data.formats"):
        records = read_annotations(path, format="casme2", root=root)  # the call of docs/datasets.md
    assert [r.emotion for r in records] == ["happiness", "disgust", "repression", "surprise", "others"]
    assert {r.label for r in records} == set(range(5)) and records.excluded == {"fear": 2, "sadness": 1}
    assert [r.getMessage() for r in caplog.records] == [f"{path}: label map casme2_5 leaves out 3 clips (fear 2, sadness 1)"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mer.data.formats"):
        dfme = read_annotations(path, format="casme2", root=root, label_map="dfme7")
    assert len(dfme) == 6 and dfme.excluded == {"repression": 1, "others": 1}
    assert [r.getMessage() for r in caplog.records] == [f"{path}: label map dfme7 leaves out 2 clips (repression 1, others 1)"]


DATA_CONFIGS = sorted(p.stem for p in (Path(mer.configs.__file__).parent / "data").glob("*.yaml") if p.stem != "base")


@pytest.mark.parametrize("name", DATA_CONFIGS)
def test_each_data_config_learns_its_formats_own_classes(name):
    data = compose("train", [f"data={name}"]).data
    if data.format == "composite":  # several sets under one map: MEGC's three classes
        assert name in ("composite", "megc2019") and data.label_map == "megc3"
        own = "megc3"
    elif name.startswith("synthetic"):  # DFME-style: the dfme format's own classes
        own = default_label_map(data.format)
        assert data.format == "dfme" and data.label_map == own
    else:
        own = default_label_map(data.format)
        assert data.format == name and data.label_map == own
    assert class_names(data) == list(get_label_map(own).classes)


def test_samm_header_on_row_13(tmp_path):
    root = tmp_path / "SAMM"
    index_folder(root / "006" / "006_1_2", range(5560, 5600), pattern="006_{:05d}.jpg")
    rows = [
        [6, "006_1_2", 1, 5562, 5588, 5598, 37, "Micro - 1/2", "R12+A1", "", "Contempt", 4],
        [6, "006_1_2", 1, 5562, -1, 5580, 19, "Micro - 1/2", "4", "", "Anger", 1],
    ]
    path = write_workbook(tmp_path / "SAMM_Micro_FACS_Codes_v2.xlsx", {"Sheet1": SAMM_PREAMBLE + [SAMM_HEADER] + rows})
    with pytest.raises(AnnotationError, match=r"row 14: 'A1' in AU cell 'R12\+A1' is not an action unit"):
        read_annotations(path, format="samm", root=root)
    with pytest.warns(UserWarning):
        records = read_annotations(path, format="samm", root=root, strict=False)
    assert len(records) == 1 and len(records.skipped) == 1 and "row 14" in records.skipped[0]
    (record,) = records
    assert (record.subject, record.clip_id, record.onset, record.offset) == ("006", "006_1_2", 2, 20)
    assert record.apex_estimated and record.apex == 11 and record.emotion == "anger"
    assert record.extra["objective"] == 1
    frames = open_video(record.path).get_frames([record.onset, record.offset])
    assert [read_index(f) for f in frames] == [5562, 5580]


def test_casme3_clip_ids_are_unique_across_subjects(tmp_path):
    root = tmp_path / "part_A"
    for subject in ("spNO.1", "spNO.2"):
        index_folder(root / subject / "a" / "color", range(0, 60), pattern="{}.jpg")
    header = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]
    rows = [
        ["spNO.1", "a", 10, 15, 25, "4+L10", 1, "disgust"],
        ["spNO.1", "a", 30, 33, 40, "12", 2, "happy"],
        ["spNO.2", "a", 10, 12, 20, "1+2", 3, "surprise"],
    ]
    path = write_workbook(tmp_path / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", {"Sheet1": [header] + rows})
    records = read_annotations(path, format="casme3", root=root)
    assert [r.clip_id for r in records] == ["spNO.1/a/10", "spNO.1/a/30", "spNO.2/a/10"]
    assert len({r.clip_id for r in records}) == 3
    assert records[1].emotion == "happiness" and records[1].fps == 30.0
    assert records[0].span == (10, 26) and records[0].n_frames == 60  # the event inside the recording
    assert build_sampler("uniform", num_frames=4)(records[0]) == [10, 15, 20, 25]


@pytest.fixture
def video_dir(tmp_path):
    index_video(tmp_path / "s01" / "c1.mp4", 40)
    index_video(tmp_path / "s02" / "c2.mp4", 30)
    return tmp_path


def test_plain_csv_counts_frames_when_not_given(video_dir):
    csv = video_dir / "clips.csv"
    csv.write_text(
        "subject,clip,path,onset,apex,offset,emotion,aus,fps\n"
        "s01,c1,s01/c1.mp4,5,10,20,Happiness,6+12,200\n"
        "s02,c2,s02/c2.mp4,0,,29,surprise,1+2+5+26,200\n"
    )
    records = read_annotations(csv, format="csv")
    assert [r.n_frames for r in records] == [40, 30]
    assert records[1].apex_estimated and records[1].apex == 14


def test_dfme_finds_videos_by_subject_and_clip(video_dir):
    csv = video_dir / "annotations.csv"
    csv.write_text(
        "Subject,Filename,OnsetFrame,ApexFrame,OffsetFrame,Action Units,Emotion,fps,n_frames\n"
        "s01,c1,5,10,20,AU6+AU12,happiness,500,40\n"
    )
    (record,) = read_annotations(csv, format="dfme")
    assert record.path.endswith("s01/c1.mp4") and record.fps == 500.0 and record.n_frames == 40


BAD_ROWS = [
    ("s01,c1,s01/c1.mp4,5,45,50,happiness,6,200", "row 2: apex 45 is outside the clip (40 frames)"),
    ("s01,c1,s01/c1.mp4,5,10,20,hapiness,6,200", "row 2: unknown emotion label 'hapiness'"),
    ("s01,c1,s01/nothere.mp4,5,10,20,happiness,6,200", "row 2: missing video or frame folder"),
    ("s01,c1,s01/c1.mp4,20,10,5,happiness,6,200", "row 2: offset 5 is before onset 20"),
    ("s01,c1,s01/c1.mp4,5,25,20,happiness,6,200", "row 2: apex 25 is outside onset..offset 5..20"),
    ("s01,c1,s01/c1.mp4,five,10,20,happiness,6,200", "row 2: onset 'five' is not a frame number"),
]


@pytest.mark.parametrize("row, message", BAD_ROWS)
def test_invalid_row_names_file_and_row(video_dir, row, message):
    csv = video_dir / "bad.csv"
    csv.write_text("subject,clip,path,onset,apex,offset,emotion,aus,fps\n" + row + "\n")
    with pytest.raises(AnnotationError) as err:
        read_annotations(csv, format="csv")
    text = str(err.value)
    assert text.startswith(str(csv)) and message in text and "\n" not in text


def test_lenient_reading_skips_bad_rows_and_keeps_the_rest(video_dir):
    csv = video_dir / "mixed.csv"
    lines = (
        ["s02,c2,s02/c2.mp4,0,3,29,surprise,1,200"] + [row for row, _ in BAD_ROWS] + ["s01,c1,s01/c1.mp4,5,10,20,fear,1+2+4,200"]
    )
    csv.write_text("subject,clip,path,onset,apex,offset,emotion,aus,fps\n" + "\n".join(lines) + "\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = read_annotations(csv, format="csv", strict=False)
    assert len(caught) == len(BAD_ROWS) + 1  # one per row, then the summary
    assert f"skipped {len(BAD_ROWS)} invalid rows, kept 2" in str(caught[-1].message)
    assert [r.emotion for r in records] == ["surprise", "fear"]
    assert len(records.skipped) == len(BAD_ROWS)
    assert [m.split(": ")[0] for m in records.skipped] == [f"{csv}, row {i}" for i in range(3, 3 + len(BAD_ROWS))]


def test_missing_column_is_named(video_dir):
    csv = video_dir / "nocol.csv"
    csv.write_text("subject,clip,path,onset,apex,emotion,fps\ns01,c1,s01/c1.mp4,1,2,happiness,200\n")
    with pytest.raises(AnnotationError, match="missing column 'offset'"):
        read_annotations(csv, format="csv")


def test_unknown_format_lists_the_valid_ones(video_dir):
    with pytest.raises(ValueError, match="valid choices: " + ", ".join(list_formats())):
        read_annotations(video_dir / "s01" / "c1.mp4", format="casme9")


def test_duplicate_clip_ids_are_an_error(video_dir):
    csv = video_dir / "dup.csv"
    csv.write_text(
        "subject,clip,path,onset,apex,offset,emotion,aus,fps\n"
        "s01,c1,s01/c1.mp4,5,10,20,fear,1,200\ns01,c1,s01/c1.mp4,5,10,20,fear,1,200\n"
    )
    with pytest.raises(AnnotationError, match="row 3: clip id 'c1' repeats row 2"):
        read_annotations(csv, format="csv")


def test_annotation_frame_count_is_checked_when_read_and_when_decoding(video_dir):
    csv = video_dir / "count.csv"
    header = "subject,clip,path,onset,apex,offset,emotion,aus,fps,n_frames\n"
    csv.write_text(header + "s01,c1,s01/c1.mp4,5,10,20,fear,1,200,41\ns01,c2,s01/c1.mp4,5,10,20,fear,1,200,40\n")
    wrong = r"count.csv, row 2: the annotation says 41 frames but c1.mp4 holds 40 \(strict=False"
    with pytest.raises(AnnotationError, match=wrong):
        read_annotations(csv, format="csv")
    kept = read_annotations(csv, format="csv", strict=False)  # the wrong row skipped and counted, the rest kept
    assert [r.clip_id for r in kept] == ["c2"] and len(kept.skipped) == 1
    record = kept[0].replace(n_frames=41)  # a record made elsewhere: decoding still checks the count
    with pytest.raises(Exception, match="the annotation says 41 frames but the file decodes 40"):
        ClipDataset([record], build_sampler("keyframe", num_frames=4))[0]
    item = ClipDataset([record], build_sampler("keyframe", num_frames=4), check_frames=False)[0]
    indices = item["indices"].tolist()
    assert indices[0] == 5 and 10 in indices and indices[-1] == 20
