"""Long-video annotation files: CAS(ME)^2 (casme_sq) and SAMM long videos (samm_lv).

Each expression is an interval of a long recording, read as an event_span clip of it that keeps
the recording and micro/macro in ``extra`` for spotting."""

import pytest

from mer.data.formats import read_annotations
from mer.data.records import AnnotationError
from mer.data.samplers import build_sampler
from mer.data.video import open_video
from tests.helpers import SAMM_LV_HEADER, SAMM_LV_PREAMBLE, read_index, samm_lv_folders, write_casme_sq, write_workbook

# ---- CAS(ME)^2: no header; naming sheets map participants and videos to folders ------------

CASME_SQ_ROWS = [
    [1, "disgust1_1", 5, 10, 20, "4+L10", "negative", "micro-expression", "disgust"],
    [1, "disgust1_2", 22, 0, 30, "AU1+AU2", "positive", "macro-expression", "happy"],  # apex 0: not coded
    [2, "anger1_1", 3, 8, 0, "12B", "surprise", "micro-expression", None],  # offset 0: not coded
    [9, "anger1_2", 12, 15, 25, "(5)", "negative", "macro-expression", None],  # no participant 9
    [2, "anger1_3", 12, 15, 25, "(5)", "others", "macro-expression", None],
]


def test_casme_sq_reads_intervals_of_the_long_videos(tmp_path):
    path, root = write_casme_sq(tmp_path, CASME_SQ_ROWS)
    with pytest.raises(AnnotationError) as err:
        read_annotations(path, format="casme_sq", root=root, label_map="all")
    message = str(err.value)
    assert (
        f"{path}, sheet 'Sheet1', row 4: missing video or frame folder (participant 9 is not in sheet 'naming rule1')" in message
    )
    with pytest.warns(UserWarning):
        records = read_annotations(path, format="casme_sq", root=root, label_map="all", strict=False)
    assert [r.clip_id for r in records] == ["s15/disgust1_1", "s15/disgust1_2", "s16/anger1_1", "s16/anger1_3"]
    assert len(records.skipped) == 1 and "sheet 'Sheet1', row 4:" in records.skipped[0]
    assert [r.extra["type"] for r in records] == ["micro", "macro", "micro", "macro"]
    assert [r.extra["video"] for r in records] == ["s15/15_0101disgustingteeth"] * 2 + ["s16/16_0401girlcrashing"] * 2
    first, second, third, _ = records
    assert (first.subject, first.fps, first.n_frames, first.span) == ("s15", 30.0, 40, (4, 20))  # img5..img20 of 40
    assert first.extra["self_report"] == "disgust" and first.au_numbers == {4, 10}
    assert second.apex_estimated and second.apex == (21 + 29) // 2
    assert (third.onset, third.apex, third.offset) == (2, 7, 7) and third.extra["from_apex"] == ["offset"]
    frames = open_video(first.path).get_frames(build_sampler("uniform", num_frames=2)(first))
    assert [read_index(f) for f in frames] == [5, 20]  # the interval, in the long video's numbering


def test_casme_sq_coarse_emotions_under_megc3(tmp_path):
    path, root = write_casme_sq(tmp_path, CASME_SQ_ROWS[:3] + CASME_SQ_ROWS[4:])  # well formed: read strictly
    records = read_annotations(path, format="casme_sq", root=root, label_map="megc3")
    assert [(r.emotion, r.label) for r in records] == [("negative", 0), ("positive", 1), ("surprise", 2)]
    assert records.excluded == {"others": 1}


# ---- SAMM long videos: a preamble, then the header; no emotion coded -------------------------

SAMM_LV_ROWS = [
    [6, "006_1_1", 1, 5, 10, 20, 16, "Micro - 1/2", "4+L10", None],
    [6, "006_1_2", 1, 0, 25, 35, 0, "Macro", "AU1+AU2", "onset not coded"],  # onset 0: the apex starts it
    [7, "007_3_1", 3, 3, -1, 12, 10, "Macro", "12B+(5)", None],  # apex -1: not coded
    [7, "007_3_2", 3, 14, 20, 28, 15, "Blink", "43", None],  # not a micro or macro type
]


@pytest.fixture
def samm_lv(tmp_path):
    return samm_lv_folders(tmp_path / "SAMMLV")


def test_samm_lv_reads_typed_intervals_without_emotion(tmp_path, samm_lv):
    sheets = {"FACS_Movement_Only": SAMM_LV_PREAMBLE + [SAMM_LV_HEADER] + SAMM_LV_ROWS, "Legend": [["AU codes"]]}
    path = write_workbook(tmp_path / "SAMM_LongVideos_V1_Release.xlsx", sheets)
    with pytest.raises(AnnotationError) as err:
        read_annotations(path, format="samm_lv", root=samm_lv, label_map="all")
    expected = f"{path}, sheet 'FACS_Movement_Only', row 14: expression type 'Blink' is neither micro nor macro"
    assert str(err.value).startswith(expected)
    with pytest.warns(UserWarning):
        records = read_annotations(path, format="samm_lv", root=samm_lv, label_map="all", strict=False)
    assert [r.clip_id for r in records] == ["006_1_1", "006_1_2", "007_3_1"] and len(records.skipped) == 1
    assert [(r.extra["video"], r.extra["type"]) for r in records] == [("006_1", "micro"), ("006_1", "macro"), ("007_3", "macro")]
    assert [r.emotion for r in records] == ["unknown"] * 3 and [r.subject for r in records] == ["006", "006", "007"]
    first, second, third = records
    assert (first.span, first.fps, first.first_frame) == ((4, 20), 200.0, 1)
    assert (second.onset, second.apex, second.offset) == (24, 24, 34) and second.extra["from_apex"] == ["onset"]
    assert third.apex_estimated and third.apex == (2 + 11) // 2 and third.au_string == "(5)+12B"
    # without an emotion the intervals serve spotting only: every recognition map leaves them out
    assert len(read_annotations(path, format="samm_lv", root=samm_lv, label_map="megc3", strict=False)) == 0


def test_samm_lv_reads_an_emotion_column_when_there_is_one(tmp_path, samm_lv):
    emotions = ["Happiness", "Disgust", None]  # a blank cell: unknown, as in the releases without the column
    rows = [row[:-1] + [emotion, row[-1]] for row, emotion in zip(SAMM_LV_ROWS[:3], emotions)]
    path = write_workbook(tmp_path / "lv.xlsx", {"Sheet1": [SAMM_LV_HEADER[:-1] + ["Estimated Emotion", "Notes"]] + rows})
    records = read_annotations(path, format="samm_lv", root=samm_lv, label_map="megc3")  # well formed: read strictly
    assert [(r.emotion, r.label, r.extra["type"]) for r in records] == [("happiness", 1, "micro"), ("disgust", 0, "macro")]
    assert records.excluded == {"unknown": 1}
