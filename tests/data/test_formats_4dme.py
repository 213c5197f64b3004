"""4DME on small fixtures, and the AU tokens of 4DME and the other sheets."""

import pytest

from mer.data.aus import AUParseError, format_aus, parse_aus
from mer.data.formats import read_annotations
from mer.data.records import AnnotationError
from mer.data.video import open_video
from tests.helpers import index_folder, read_index, write_workbook

HEADER = ["sub_ID", "fold_name", "Emotion", "Onset", "Apex", "Offset", "AUs", "AU1", "AU4", "AU12"]


@pytest.fixture
def fourdme(tmp_path):
    """The data set's folder: the label sheet beside gray_micro/<sub_ID>/<fold_name>/."""
    index_folder(tmp_path / "gray_micro" / "S01" / "S01_t1_01", range(11, 31), "{}.jpg")
    index_folder(tmp_path / "gray_micro" / "S01" / "S01_t2_01", range(1, 13), "{}.jpg")
    index_folder(tmp_path / "gray_micro" / "S02" / "S02_t1_03", range(5, 15), "{}.jpg")
    return tmp_path


def test_4dme_well_formed(fourdme):
    rows = [
        ["S01", "S01_t1_01", "Negative", 12, 20, 29, "AU4+AU7", 0, 1, 0],
        ["S01", "S01_t2_01", "Positive", 1, 6, 12, "AU12", 0, 0, 1],
        ["S02", "S02_t1_03", "Repression", 5, 9, 14, "AU14", 0, 0, 0],
    ]
    path = write_workbook(fourdme / "4DME_Labelling_Micro_release v1.xlsx", {"Sheet1": [HEADER] + rows})
    records = read_annotations(path, format="4dme")  # root: the sheet's folder, which holds gray_micro
    assert [r.clip_id for r in records] == ["S01/S01_t1_01", "S01/S01_t2_01", "S02/S02_t1_03"]
    assert [r.emotion for r in records] == ["negative", "positive", "repression"]
    assert [r.label for r in records] == [1, 0, 3]  # 4dme5: positive, negative, surprise, repression, others
    first = records[0]
    assert (first.onset, first.apex, first.offset, first.n_frames, first.first_frame, first.fps) == (1, 9, 18, 20, 11, 60.0)
    assert first.au_string == "4+7"  # from the AUs cell, not the one-per-AU columns
    frames = open_video(first.path).get_frames([first.onset, first.apex, first.offset])
    assert [read_index(f) for f in frames] == [12, 20, 29]
    # root may also be gray_micro itself
    assert [r.path for r in read_annotations(path, format="4dme", root=fourdme / "gray_micro")] == [r.path for r in records]


def test_4dme_messy_cells(fourdme):
    rows = [
        ["S01", "S01_t1_01", "negative", 12, -1, 29, "AU4(L)+AU12(R)", 0, 1, 1],
        ["S01", "S01_t2_01", "Surprise", 1, "/", 12, "AU1+AU2+(5)", 1, 0, 0],
        ["S02", "S02_t1_03", "Others", 5, 9, 14, "4+L10", 0, 1, 0],
    ]
    path = write_workbook(fourdme / "4DME_Labelling_Micro_release v1.xlsx", {"Sheet1": [HEADER] + rows})
    records = read_annotations(path, format="4dme")
    assert [r.au_string for r in records] == ["L4+R12", "1+2+(5)", "4+L10"]
    assert [(r.apex, r.apex_estimated) for r in records] == [(9, True), (5, True), (4, False)]
    assert [r.label for r in records] == [1, 2, 4]


def test_4dme_broken_row(fourdme):
    rows = [
        ["S01", "S01_t1_01", "Negative", 12, 20, 29, "AU4", 0, 1, 0],
        ["S01", "S01_t2_01", "Positive", 5, 2, 12, "AU12", 0, 0, 1],  # apex before onset
        ["S02", "S02_t1_03", "Repression", 5, 9, 14, "AU14", 0, 0, 0],
    ]
    path = write_workbook(fourdme / "4DME_Labelling_Micro_release v1.xlsx", {"Sheet1": [HEADER] + rows})
    with pytest.raises(AnnotationError) as err:
        read_annotations(path, format="4dme")
    message = str(err.value)
    assert message.startswith(f"{path}, row 3: apex 1 is outside onset..offset 4..11") and "\n" not in message
    with pytest.warns(UserWarning, match="skipped 1 invalid rows, kept 2"):
        records = read_annotations(path, format="4dme", strict=False)
    assert [r.clip_id for r in records] == ["S01/S01_t1_01", "S02/S02_t1_03"]
    assert len(records.skipped) == 1 and records.skipped[0].startswith(f"{path}, row 3: ")


@pytest.mark.parametrize(
    "text, canonical",
    [("4+L10", "4+L10"), ("AU1+AU2", "1+2"), ("12B", "12B"), ("(5)", "(5)"), ("AU4(L)", "L4"), ("AU4(r)+AU12", "R4+12")],
)
def test_messy_au_tokens(text, canonical):
    assert format_aus(parse_aus(text)) == canonical


@pytest.mark.parametrize("bad", ["L4(R)", "AU4(L"])
def test_au_side_written_twice_or_an_unclosed_suffix_is_an_error(bad):
    with pytest.raises(AUParseError, match="is not an action unit"):
        parse_aus(bad)


def test_4dme_header_below_a_title_and_errors_name_the_sheet(fourdme):
    rows = [
        ["S01", "S01_t1_01", "Negative", 12, 20, 29, "AU4", 0, 1, 0],
        ["S01", "S01_t2_01", "Positive", 5, 2, 12, "AU12", 0, 0, 1],
    ]
    sheets = {"micro": [["4DME micro-expressions, release v1"], HEADER, *rows], "AU legend": [["AU1", "inner brow raiser"]]}
    path = write_workbook(fourdme / "4DME_Labelling_Micro_release v1.xlsx", sheets)
    with pytest.raises(AnnotationError, match=r"release v1.xlsx, sheet 'micro', row 4: apex 1 is outside onset..offset 4..11"):
        read_annotations(path, format="4dme")
