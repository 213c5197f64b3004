"""Annotation files across releases: headers found by name wherever they sit, the known spellings of
CASME II, SAMM and CAS(ME)^3, and errors naming the file, the sheet and the row."""

import pytest

from mer.data.formats import read_annotations
from mer.data.records import AnnotationError
from tests.helpers import SAMM_HEADER, SAMM_PREAMBLE, casme2_folders, index_folder, write_workbook

# ---- SAMM: the header on row 13 (v2, after a preamble) or on row 1 ------------------------

SAMM_ROWS = [
    [6, "006_1_2", 1, 5562, 5570, 5578, 17, "Micro - 1/2", "AU1+AU2", None, "Surprise", 6],
    [6, "006_1_3", 1, 5563, -1, 5575, 13, "Micro - 1/2", "4+L10", None, "Anger", 1],  # -1: no apex coded
    [7, "007_3_1", 3, 101, 110, 120, 20, "Micro - 1/2", "12B+(25)", None, "Hapiness", 3],  # a typo
]


@pytest.fixture
def samm_root(tmp_path):
    root = tmp_path / "SAMM"
    index_folder(root / "006" / "006_1_2", range(5560, 5580), pattern="006_{:05d}.jpg")
    index_folder(root / "006" / "006_1_3", range(5560, 5580), pattern="006_{:05d}.jpg")
    index_folder(root / "007" / "007_3_1", range(100, 122), pattern="007_{:05d}.jpg")
    return root


@pytest.mark.parametrize("preamble", [[], SAMM_PREAMBLE], ids=["header_row_1", "header_row_13"])
def test_samm_header_is_found_by_name(tmp_path, samm_root, preamble):
    path = write_workbook(tmp_path / "SAMM_Micro_FACS_Codes_v2.xlsx", {"Sheet1": preamble + [SAMM_HEADER] + SAMM_ROWS})
    bad_row = len(preamble) + 4  # header, two good rows, then the typo
    with pytest.raises(AnnotationError) as err:
        read_annotations(path, format="samm", root=samm_root)
    message = str(err.value)
    assert message.startswith(f"{path}, row {bad_row}: unknown emotion label 'Hapiness'") and "\n" not in message
    with pytest.warns(UserWarning):
        records = read_annotations(path, format="samm", root=samm_root, strict=False)
    assert [r.clip_id for r in records] == ["006_1_2", "006_1_3"]
    assert len(records.skipped) == 1 and f"row {bad_row}:" in records.skipped[0]
    first, second = records
    assert (first.onset, first.apex, first.offset, first.au_string) == (2, 10, 18, "1+2")
    assert second.apex_estimated and second.apex == (3 + 15) // 2 and second.au_numbers == {4, 10}
    assert first.extra["objective"] == 6 and first.extra["inducement"] == 1


def test_missing_header_names_the_file_sheets_and_columns(tmp_path, samm_root):
    one = write_workbook(tmp_path / "one.xlsx", {"Sheet1": SAMM_PREAMBLE + [["Subject", "Clip"]] + SAMM_ROWS})
    with pytest.raises(AnnotationError, match=r"one.xlsx: no header row with the columns Subject, Filename, Onset Frame"):
        read_annotations(one, format="samm", root=samm_root)
    two = write_workbook(tmp_path / "two.xlsx", {"readme": [["notes"]], "codes": SAMM_ROWS})
    with pytest.raises(
        AnnotationError, match=r"two.xlsx: no sheet has a header row with the columns .* \(sheets: readme, codes\)"
    ):
        read_annotations(two, format="samm", root=samm_root)
    # a sheet naming some of the columns is passed over for the sheet that has them all
    moved = write_workbook(tmp_path / "moved.xlsx", {"readme": [SAMM_HEADER[:6]], "codes": [SAMM_HEADER] + SAMM_ROWS[:2]})
    assert [r.clip_id for r in read_annotations(moved, format="samm", root=samm_root)] == ["006_1_2", "006_1_3"]
    write_workbook(moved, {"readme": [SAMM_HEADER[:6]], "codes": [["x"]]})
    with pytest.raises(AnnotationError, match=r"moved.xlsx, sheet 'readme': missing column 'Action Units'"):
        read_annotations(moved, format="samm", root=samm_root)


# ---- CASME II: the 2014 and 2019 coding files ----------------------------------------------

# (subject, filename, onset, apex, offset, aus, emotion, objective class) as each release writes them
CASME2_2014 = (
    ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units", "Estimated Emotion"],
    lambda s, f, on, ap, off, au, emo, obj: [s, f, None, on, ap, off, None, au, emo],
)
CASME2_2019 = (
    ["Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame", "Action Units", "Emotion", "Objective Class"],
    lambda s, f, on, ap, off, au, emo, obj: [s, f, on, ap, off, au, emo, obj],
)
CASME2_ROWS = [
    ("sub01", "EP02_01f", " 46 ", "59", "86 ", "AU1+AU2", "happiness", 1),  # stray spaces in frame cells
    (1, "EP03_02 ", 10, "/", 20, "4+L10", "repression", 2),  # no apex coded
    ("02", "EP02_01f", 101, 110, 120, "12B+(25)", "disgust", 3),
    ("2", "EP09_05", 101, 115, 110, "4", "disgust", 3),  # apex after offset
]


@pytest.fixture
def casme2_root(tmp_path):
    root = casme2_folders(tmp_path / "CASME2_RAW_selected")
    index_folder(root / "sub02" / "EP09_05", range(100, 121))
    return root


@pytest.mark.parametrize("release", [CASME2_2014, CASME2_2019], ids=["2014", "2019"])
def test_casme2_releases_read_alike(tmp_path, casme2_root, release):
    header, layout = release
    path = write_workbook(tmp_path / "CASME2-coding.xlsx", {"Sheet1": [header] + [layout(*row) for row in CASME2_ROWS]})
    with pytest.raises(AnnotationError, match=r"CASME2-coding.xlsx, row 5: apex 15 is outside onset..offset 1..10"):
        read_annotations(path, format="casme2", root=casme2_root, label_map="casme2_5")
    with pytest.warns(UserWarning):
        records = read_annotations(path, format="casme2", root=casme2_root, label_map="casme2_5", strict=False)
    assert [r.clip_id for r in records] == ["sub01/EP02_01f", "sub01/EP03_02", "sub02/EP02_01f"]
    assert len(records.skipped) == 1 and "row 5:" in records.skipped[0]
    first, second, third = records
    assert (first.onset, first.apex, first.offset, first.first_frame) == (0, 13, 40, 46)
    assert second.apex_estimated and (second.onset, second.apex, second.offset) == (9, 14, 19)
    assert third.au_string == "12B+(25)" and third.emotion == "disgust"
    assert ("objective" in first.extra) == (header is CASME2_2019[0])


# ---- CAS(ME)^3: part A (with apex, several sheets) and part C (no apex column) -------------

PART_A_HEADER = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]


def test_casme3_part_a_names_its_sheet_in_errors(tmp_path):
    root = tmp_path / "part_A"
    index_folder(root / "spNO.1" / "a" / "color", range(0, 40), pattern="{}.jpg")
    index_folder(root / "spNO.2" / "b" / "color", range(0, 40), pattern="{}.jpg")
    rows = [
        ["spNO.1", "a", 10, 15, 25, "4+L10", 1, "disgust"],
        ["spNO.2", "B", 5, "/", 12, "AU1+AU2", 3, "surprise"],  # the folder is named in lower case; no apex coded
        ["spNO.2", "b", 20, 30, 45, "12", 2, "happy"],  # offset past the last frame
    ]
    sheets = {"readme": [["CAS(ME)^3 part A: micro-expressions"]], "label": [PART_A_HEADER] + rows}
    path = write_workbook(tmp_path / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", sheets)
    with pytest.raises(AnnotationError) as err:
        read_annotations(path, format="casme3", root=root)
    assert f"{path}, sheet 'label', row 4: offset frame 45 is not in" in str(err.value)
    with pytest.warns(UserWarning):
        records = read_annotations(path, format="casme3", root=root, strict=False)
    assert [r.clip_id for r in records] == ["spNO.1/a/10", "spNO.2/B/5"]
    assert "sheet 'label', row 4" in records.skipped[0]
    assert records[1].apex_estimated and records[1].apex == 8 and records[1].extra["video"] == "spNO.2/b"
    assert records[0].span == (10, 26) and records[0].extra["objective"] == 1


def test_casme3_part_c_has_no_apex_and_no_filename(tmp_path):
    root = tmp_path / "part_C"
    index_folder(root / "01" / "a" / "color", range(370, 400), pattern="{}.jpg")
    index_folder(root / "02" / "a" / "color", range(1, 20), pattern="{}.jpg")
    rows = [[1, 1, 373, 380, "negative", "p1"], [1, 2, 390, 398, "surprise", "p2"], [2, 1, 12, 5, "positive", "p3"]]
    path = write_workbook(
        tmp_path / "CAS(ME)3_part_C_ME.xlsx", {"Sheet1": [["sub", "count", "onset", "offset", "emotion", "PHY"]] + rows}
    )
    with pytest.raises(AnnotationError, match=r"part_C_ME.xlsx, row 4: offset 4 is before onset 11"):
        read_annotations(path, format="casme3", root=root, label_map="megc3")
    with pytest.warns(UserWarning):
        records = read_annotations(path, format="casme3", root=root, label_map="megc3", strict=False)
    assert [r.clip_id for r in records] == ["1/a/373", "1/a/390"] and len(records.skipped) == 1
    first = records[0]
    assert first.apex_estimated and (first.onset, first.apex, first.offset) == (3, 6, 10)
    assert first.emotion == "negative" and first.label == 0 and first.extra["video"] == "01/a"
