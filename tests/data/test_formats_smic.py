"""SMIC (clips labelled by folders) and SMIC-E (long clips, frame numbers from FirstF) on small fixtures."""

import logging

import pytest

from mer.data.formats import read_annotations
from mer.data.records import AnnotationError
from mer.data.video import open_video
from tests.helpers import index_folder, read_index, write_workbook

SMIC_FRAMES = "image{:06d}.jpg"


@pytest.fixture
def smic(tmp_path):
    """SMIC_all_cropped: HS with subjects s2 and s10 (s10 with a capitalised emotion folder), VIS with s2."""
    root = tmp_path / "SMIC_all_cropped"
    index_folder(root / "HS" / "s2" / "micro" / "negative" / "s2_ne_01", range(2201, 2211), SMIC_FRAMES)
    index_folder(root / "HS" / "s2" / "micro" / "surprise" / "s2_sur_01", range(3301, 3306), SMIC_FRAMES)
    index_folder(root / "HS" / "s2" / "non_micro" / "s2_n_01", range(1, 5), SMIC_FRAMES)  # not micro-expressions
    index_folder(root / "HS" / "s10" / "micro" / "Positive" / "s10_po_02", range(101, 108), SMIC_FRAMES)
    index_folder(root / "VIS" / "s2" / "micro" / "negative" / "s2_ne_01", range(1, 4), SMIC_FRAMES)
    return root


def test_smic_reads_every_modality_of_the_data_set_folder(smic):
    records = read_annotations(smic, format="smic")
    assert [r.clip_id for r in records] == [
        "HS/s2/s2_ne_01",
        "HS/s2/s2_sur_01",
        "HS/s10/s10_po_02",
        "VIS/s2/s2_ne_01",
    ]  # natural order (s2 before s10), non_micro left out
    assert [r.subject for r in records] == ["s2", "s2", "s10", "s2"]
    assert [r.emotion for r in records] == ["negative", "surprise", "positive", "negative"]
    assert [r.label for r in records] == [0, 2, 1, 0]  # megc3, SMIC's own classes: negative, positive, surprise
    assert [r.fps for r in records] == [100.0, 100.0, 100.0, 25.0]
    assert [r.extra["modality"] for r in records] == ["HS", "HS", "HS", "VIS"]
    assert records.excluded == {} and records.skipped == []


def test_smic_clip_is_the_event_first_to_last_frame_and_its_apex_is_estimated(smic):
    record = read_annotations(smic / "HS", format="smic")[0]
    assert (record.onset, record.apex, record.offset, record.n_frames) == (0, 4, 9, 10)
    assert record.apex_estimated and record.aus == () and record.span == (0, 10)
    frames = open_video(record.path).get_frames([record.onset, record.offset])
    assert [read_index(f) for f in frames] == [2201, 2210]


def test_smic_reads_one_modality_folder(smic):
    records = read_annotations(smic / "VIS", format="smic", fps=30)
    assert [(r.clip_id, r.fps, r.n_frames) for r in records] == [("VIS/s2/s2_ne_01", 30.0, 3)]


def test_smic_broken_clip_folder_names_the_folder_or_is_skipped(smic):
    (smic / "HS" / "s2" / "micro" / "negative" / "s2_ne_02").mkdir()  # no frames
    empty = smic / "HS" / "s2" / "micro" / "negative" / "s2_ne_02"
    with pytest.raises(AnnotationError) as err:
        read_annotations(smic / "HS", format="smic")
    assert str(err.value).startswith(f"{empty}: empty folder") and "\n" not in str(err.value)
    with pytest.warns(UserWarning, match="skipped 1 invalid rows, kept 3"):
        records = read_annotations(smic / "HS", format="smic", strict=False)
    assert [r.clip_id for r in records] == ["HS/s2/s2_ne_01", "HS/s2/s2_sur_01", "HS/s10/s10_po_02"]
    assert len(records.skipped) == 1 and records.skipped[0].startswith(str(empty))


def test_smic_path_must_be_the_data_set_or_a_modality_folder(smic, tmp_path):
    with pytest.raises(AnnotationError, match="data set folder not found"):
        read_annotations(tmp_path / "nowhere", format="smic")
    with pytest.raises(AnnotationError, match="no HS, VIS or NIR folder"):
        read_annotations(smic / "HS" / "s2", format="smic")


SMIC_E_HEADER = ["Subject", "Filename", "OnsetF", "OffsetF", "Emotion", "FirstF"]
NOTES = [  # free text under the HS sheet's table
    ["Note: frame numbers are those of the recordings.", None, None, None, None, None],
    [None, "see the readme", None, None, None, None],
]


@pytest.fixture
def smic_e(tmp_path):
    """SMIC-HS-E: three long clips whose frame files carry the recording's frame numbers."""
    root = tmp_path / "SMIC-HS-E"
    index_folder(root / "s01" / "s01_ne_01", range(1200, 1230), SMIC_FRAMES)
    index_folder(root / "s01" / "s01_po_02", range(40, 60), SMIC_FRAMES)
    index_folder(root / "s03" / "s03_sur_01", range(7000, 7025), SMIC_FRAMES)
    return root


def test_smic_e_positions_count_from_first_frame_and_notes_end_the_table(smic_e, tmp_path, caplog):
    rows = [
        [1, "s01_ne_01", 1210, 1220, "negative", 1200],
        [1, "s01_po_02", 45, 55, "positive", 40],
        [3, "s03_sur_01", 7002, 7020, "surprise", 7000],
        *NOTES,
    ]
    path = write_workbook(tmp_path / "SMIC-HS-E_annotation.xlsx", {"Sheet1": [SMIC_E_HEADER] + rows})
    with caplog.at_level(logging.INFO, logger="mer.data.formats"):
        records = read_annotations(path, format="smic_e", root=smic_e)
    assert [r.clip_id for r in records] == ["s01_ne_01", "s01_po_02", "s03_sur_01"]
    assert [r.subject for r in records] == ["s01", "s01", "s03"]
    first = records[0]
    assert (first.onset, first.offset, first.n_frames, first.first_frame, first.fps) == (10, 20, 30, 1200, 100.0)
    assert first.apex_estimated and first.apex == 15 and first.span == (0, 30)  # the long clip: context around the event
    assert [r.label for r in records] == [0, 1, 2]
    frames = open_video(first.path).get_frames([first.onset, first.offset])
    assert [read_index(f) for f in frames] == [1210, 1220]
    assert f"{path}: the 2 rows after row 4 read as notes, not clips" in caplog.messages


def test_smic_e_messy_apex_cells(smic_e, tmp_path):
    header = [*SMIC_E_HEADER, "ApexF"]
    rows = [
        ["s01", "s01_ne_01", 1210.0, 1220.0, "Negative", 1200.0, 1214],
        [1, "s01_po_02", 45, 55, "positive", 40, "/"],
        [3, "s03_sur_01", 7002, 7020, "surprise", 7000, -1],
    ]
    path = write_workbook(tmp_path / "SMIC-VIS-E_annotation.xlsx", {"Sheet1": [header] + rows})
    records = read_annotations(path, format="smic_e", root=smic_e)
    assert [(r.apex, r.apex_estimated) for r in records] == [(14, False), (10, True), (11, True)]
    assert {r.fps for r in records} == {25.0}  # VIS, from the file name


def test_smic_e_broken_row_inside_the_table_is_an_error_not_the_end(smic_e, tmp_path):
    rows = [
        [1, "s01_ne_01", 1210, 1220, "negative", 1200],
        [1, "s01_po_02", 35, 55, "positive", 40],  # onset before the recording's first frame
        [None, "s01_po_03", 45, 55, "positive", 40],  # no subject, yet a clip follows: not a note
        [3, "s03_sur_01", 7002, 7020, "surprise", 7000],
        *NOTES,
    ]
    path = write_workbook(tmp_path / "SMIC-NIR-E_annotation.xlsx", {"Sheet1": [SMIC_E_HEADER] + rows})
    with pytest.raises(AnnotationError) as err:
        read_annotations(path, format="smic_e", root=smic_e)
    message = str(err.value)
    assert message.startswith(f"{path}, row 3: onset frame 35 is before the recording's first frame 40") and "\n" not in message
    with pytest.warns(UserWarning, match="skipped 2 invalid rows, kept 2"):
        records = read_annotations(path, format="smic_e", root=smic_e, strict=False)
    assert [r.clip_id for r in records] == ["s01_ne_01", "s03_sur_01"]
    assert [m.split(": ", 1)[0] for m in records.skipped] == [f"{path}, row 3", f"{path}, row 4"]
    assert records.skipped[1].endswith("subject is missing")


def test_smic_e_header_below_a_title_and_the_sheet_named(smic_e, tmp_path, caplog):
    rows = [[1, "s01_ne_01", 1210, 1220, "negative", 1200], [1, "s01_po_02", 35, 55, "positive", 40], *NOTES]
    sheets = {"HS": [["SMIC-HS-E annotation"], SMIC_E_HEADER, *rows], "readme": [["frame numbers as in the files"]]}
    path = write_workbook(tmp_path / "SMIC-HS-E_annotation.xlsx", sheets)
    with pytest.raises(AnnotationError, match=r"SMIC-HS-E_annotation.xlsx, sheet 'HS', row 4: onset frame 35 is before"):
        read_annotations(path, format="smic_e", root=smic_e)
    with caplog.at_level(logging.INFO, logger="mer.data.formats"), pytest.warns(UserWarning):
        records = read_annotations(path, format="smic_e", root=smic_e, strict=False)
    assert [r.clip_id for r in records] == ["s01_ne_01"]
    assert f"{path}, sheet 'HS': the 2 rows after row 4 read as notes, not clips" in caplog.messages


def test_smic_e_frame_rate_comes_from_the_file_name_or_fps(smic_e, tmp_path):
    row = [1, "s01_ne_01", 1210, 1220, "negative", 1200]
    path = write_workbook(tmp_path / "annotation.xlsx", {"Sheet1": [SMIC_E_HEADER, row]})
    with pytest.raises(AnnotationError, match="does not say HS, VIS or NIR; give the frame rate"):
        read_annotations(path, format="smic_e", root=smic_e)
    assert read_annotations(path, format="smic_e", root=smic_e, fps=100)[0].fps == 100.0
