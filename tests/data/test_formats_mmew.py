"""MMEW: clips filed under emotion folders, on small fixtures."""

import pytest

from mer.data.formats import read_annotations
from mer.data.records import AnnotationError
from mer.data.video import open_video
from tests.helpers import index_folder, read_index, write_workbook

HEADER = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion", "remarks"]


@pytest.fixture
def mmew(tmp_path):
    root = tmp_path / "Micro_Expression"
    index_folder(root / "happiness" / "S01-01-001", range(1, 21), "{}.jpg")
    index_folder(root / "surprise" / "S01-02-001", range(1, 16), "{}.jpg")
    index_folder(root / "others" / "S02-07-003", range(1, 11), "{}.jpg")
    return root


def test_mmew_well_formed(mmew, tmp_path):
    rows = [
        ["S01", "S01-01-001", 2, 10, 18, "6+12", "happiness", None],
        ["S01", "S01-02-001", 1, 5, 15, "1+2+5", "surprise", "eyes half closed"],
        ["S02", "S02-07-003", 1, 4, 10, "4", "others", None],
    ]
    path = write_workbook(tmp_path / "MMEW_Micro_Exp.xlsx", {"Sheet1": [HEADER] + rows})
    records = read_annotations(path, format="mmew", root=mmew)
    assert [(r.subject, r.clip_id) for r in records] == [("S01", "S01-01-001"), ("S01", "S01-02-001"), ("S02", "S02-07-003")]
    first = records[0]
    assert (first.onset, first.apex, first.offset, first.n_frames, first.first_frame, first.fps) == (1, 9, 17, 20, 1, 90.0)
    assert [r.label for r in records] == [0, 1, 6]  # mmew7: happiness, surprise, ..., others
    assert records[1].extra == {"remarks": "eyes half closed"} and records[0].extra == {}
    frames = open_video(first.path).get_frames([first.onset, first.apex, first.offset])
    assert [read_index(f) for f in frames] == [2, 10, 18]


def test_mmew_messy_cells(mmew, tmp_path):
    rows = [
        [1, "S01-01-001", 2, "/", 18, "AU1+AU2+12B", "Happiness", None],  # emotion folder in lower case
        [1, "S01-02-001", 1, -1, 15, "4+L10+(5)", "Surprise", None],
        [2, "S02-07-003", 1, 4, 10, "AU4(L)", "Others", None],
    ]
    path = write_workbook(tmp_path / "MMEW_Micro_Exp.xlsx", {"Sheet1": [HEADER] + rows})
    records = read_annotations(path, format="mmew", root=mmew)
    assert [r.subject for r in records] == ["S01", "S01", "S02"]
    assert [(r.apex, r.apex_estimated) for r in records] == [(9, True), (7, True), (3, False)]
    assert [r.au_string for r in records] == ["1+2+12B", "4+(5)+L10", "L4"]
    assert [r.emotion for r in records] == ["happiness", "surprise", "others"]


def test_mmew_broken_row(mmew, tmp_path):
    rows = [
        ["S01", "S01-01-001", 2, 10, 18, "6+12", "happiness", None],
        ["S01", "S01-02-001", 1, 5, 25, "1+2", "surprise", None],  # offset frame 25 is not in the folder
        ["S02", "S02-07-003", 1, 4, 10, "4", "others", None],
    ]
    path = write_workbook(tmp_path / "MMEW_Micro_Exp.xlsx", {"Sheet1": [HEADER] + rows})
    with pytest.raises(AnnotationError) as err:
        read_annotations(path, format="mmew", root=mmew)
    message = str(err.value)
    assert message.startswith(f"{path}, row 3: offset frame 25 is not in ") and "(frames 1..15)" in message
    assert "\n" not in message
    with pytest.warns(UserWarning, match="skipped 1 invalid rows, kept 2"):
        records = read_annotations(path, format="mmew", root=mmew, strict=False)
    assert [r.clip_id for r in records] == ["S01-01-001", "S02-07-003"]
    assert len(records.skipped) == 1 and records.skipped[0].startswith(f"{path}, row 3: ")


def test_mmew_header_below_a_title_in_a_later_sheet_and_errors_name_the_sheet(mmew, tmp_path):
    rows = [
        ["S01", "S01-01-001", 2, 10, 18, "6+12", "happiness", None],
        ["S01", "S01-02-001", 1, 5, 25, "1+2", "surprise", None],  # offset frame 25 is not in the folder
    ]
    sheets = {"readme": [["MMEW: read me"]], "micro": [["MMEW micro-expressions"], [], HEADER, *rows]}
    path = write_workbook(tmp_path / "MMEW_Micro_Exp.xlsx", sheets)
    with pytest.raises(AnnotationError, match=r"MMEW_Micro_Exp.xlsx, sheet 'micro', row 5: offset frame 25 is not in"):
        read_annotations(path, format="mmew", root=mmew)
    with pytest.warns(UserWarning):
        records = read_annotations(path, format="mmew", root=mmew, strict=False)
    assert [r.clip_id for r in records] == ["S01-01-001"] and records[0].onset == 1
