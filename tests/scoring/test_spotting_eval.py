"""MEGC spotting evaluation: matching and counting on hand-made intervals, micro / macro, pooled
against per-video scores, STRS by hand, records and result rows; and mer-score evaluating its own
spots on tiny synthetic long videos."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from mer.data.formats import read_annotations
from mer.data.records import ClipRecord
from mer.data.synthetic import read_long_video_info, write_long_video
from mer.scoring.spotting_eval import (
    MACRO,
    MICRO,
    Spot,
    TrueInterval,
    analysis_scores,
    evaluate_spotting,
    evaluate_table,
    evaluate_videos,
    interval_type,
    match_intervals,
    report_path,
)
from tests.helpers import SAMM_LV_HEADER, SAMM_LV_PREAMBLE, samm_lv_folders, write_casme_sq, write_workbook

CONFIGS = Path(__file__).resolve().parents[2] / "mer" / "configs"


def counts(block: dict) -> tuple[int, int, int]:
    return block["tp"], block["fp"], block["fn"]


def test_iou_of_exactly_one_half_is_a_true_positive_and_just_under_is_not():
    # [0, 9] against [0, 4]: 5 frames shared of 10 (bounds inclusive)
    assert counts(evaluate_spotting([(0, 9)], [(0, 4)])) == (1, 0, 0)
    # [0, 10] against [0, 4]: 5 of 11
    assert counts(evaluate_spotting([(0, 10)], [(0, 4)])) == (0, 1, 1)
    # a stricter threshold turns the first into a miss
    assert counts(evaluate_spotting([(0, 9)], [(0, 4)], iou=0.6)) == (0, 1, 1)


def test_one_spot_over_two_true_intervals_takes_one_of_them():
    # IoU 0.5 with each; a spot is one TP at most (the first STRS script counted it twice)
    assert counts(evaluate_spotting([(0, 9)], [(0, 4), (5, 9)])) == (1, 0, 1)


def test_two_spots_on_one_true_interval_one_tp_one_fp_the_higher_iou_wins():
    truth = [(100, 110)]
    spots = [(99, 112), (101, 111)]  # IoU 11/14 and 10/12
    assert match_intervals(spots, truth) == [(1, 0)]
    assert counts(evaluate_spotting(spots, truth)) == (1, 1, 0)
    # equal IoU (10/11 each): the spotter's higher score takes it, whatever the order
    tied = [Spot(100, 109, score=1.5), Spot(101, 110, score=3.0)]
    assert match_intervals(tied, truth) == [(1, 0)]


def test_pairs_are_taken_by_iou_not_by_the_order_of_the_spots():
    # the first spot fits the interval less well (10/12) than the second (exact): the second is the TP
    assert match_intervals([(0, 11), (0, 9)], [(0, 9)]) == [(1, 0)]
    # greedy by IoU: the exact pair first, the leftover spot still finds the other interval
    assert sorted(match_intervals([(0, 9), (8, 19)], [(0, 9), (10, 19)])) == [(0, 0), (1, 1)]


def test_a_video_without_truth_has_only_false_positives_and_empty_lists_score_zero():
    report = evaluate_videos({"a": [Spot(0, 9), Spot(50, 59)], "b": []}, {"c": [TrueInterval(5, 9)]})
    assert counts(report["per_video"]["a"]["overall"]) == (0, 2, 0)
    assert report["per_video"]["a"]["overall"]["f1"] == 0.0
    assert counts(report["per_video"]["b"]["overall"]) == (0, 0, 0)  # no spot, no truth: nothing to count
    assert counts(report["per_video"]["c"]["overall"]) == (0, 0, 1)  # truth, no spot key: missed
    assert counts(report["overall"]) == (0, 2, 1)
    empty = evaluate_videos({}, {})
    assert counts(empty["overall"]) == (0, 0, 0) and empty["overall"]["f1"] == 0.0 and empty["per_video"] == {}
    assert empty["overall"]["strs"] is None  # no emotion in scope: no analysis


def test_micro_and_macro_are_matched_apart_and_overall_is_their_sum():
    truth = {"v": [TrueInterval(0, 14, MICRO), TrueInterval(100, 160, MACRO), TrueInterval(300, 310, MICRO)]}
    spots = {
        "v": [
            Spot(0, 20, MACRO),  # IoU 15/21 with the micro interval, but a macro spot: no match
            Spot(102, 158, MACRO),  # the macro interval
            Spot(300, 311, MICRO),  # the second micro interval
        ]
    }
    report = evaluate_videos(spots, truth)
    assert counts(report[MICRO]) == (1, 0, 1)
    assert counts(report[MACRO]) == (1, 1, 0)
    assert counts(report["overall"]) == (2, 1, 1)
    assert counts(report["per_video"]["v"][MACRO]) == (1, 1, 0)
    # without types the same intervals would have matched all three
    assert counts(evaluate_spotting(spots["v"], truth["v"])) == (3, 0, 0)


def test_types_come_from_the_annotation_else_from_the_length():
    assert interval_type("Macro", 0.1) == MACRO and interval_type(" micro ", 3.0) == MICRO
    assert interval_type(None, 0.5) == MICRO and interval_type("", 0.5001) == MACRO
    assert interval_type(None, 0.8, micro_max_s=1.0) == MICRO
    with pytest.raises(ValueError, match="expected micro or macro"):
        interval_type("Micro - 1/2", 0.1)


def test_pooled_scores_come_from_summed_counts_not_the_mean_of_per_video_f1():
    truth = {"a": [TrueInterval(0, 9)], "b": [TrueInterval(0, 9)]}
    spots = {"a": [Spot(0, 9)], "b": [Spot(100, 109), Spot(200, 209), Spot(300, 309)]}
    report = evaluate_videos(spots, truth)
    f1 = [report["per_video"][v]["overall"]["f1"] for v in ("a", "b")]
    assert f1 == [1.0, 0.0]
    # TP 1, FP 3, FN 1: precision 1/4, recall 1/2, F1 1/3 (the mean of the per-video F1 would be 1/2)
    assert counts(report["overall"]) == (1, 3, 1)
    assert report["overall"]["precision"] == 0.25 and report["overall"]["recall"] == 0.5
    assert report["overall"]["f1"] == pytest.approx(1 / 3)


def test_strs_on_a_small_case_computed_by_hand():
    truth = {
        "v": [
            TrueInterval(0, 9, emotion="negative"),
            TrueInterval(100, 109, emotion="negative"),
            TrueInterval(200, 209, emotion="positive"),
            TrueInterval(300, 309, emotion="surprise"),  # missed
        ]
    }
    spots = {
        "v": [
            Spot(0, 9, emotion="negative"),  # right
            Spot(100, 109, emotion="positive"),  # spotted, wrongly recognised
            Spot(200, 209, emotion="positive"),  # right
            Spot(500, 509, emotion="negative"),  # a false alarm: not in the analysis
        ]
    }
    block = evaluate_videos(spots, truth)["overall"]
    # spotting: TP 3, FP 1, FN 1 -> precision = recall = F1 = 3/4
    assert counts(block) == (3, 1, 1) and block["f1"] == pytest.approx(0.75)
    # analysis on the 3 TP pairs (predicted, true): (neg, neg), (pos, neg), (pos, pos), classes of the truth
    #   negative: TP 1 FP 0 FN 1 -> P 1,   R 1/2
    #   positive: TP 1 FP 1 FN 0 -> P 1/2, R 1
    #   surprise: TP 0 FP 0 FN 0 -> P 0,   R 0
    # P = R = 1/2 -> analysis F1 1/2; STRS = 3/4 x 1/2
    analysis = block["analysis"]
    assert analysis["classes"] == ["negative", "positive", "surprise"] and analysis["pairs"] == 3
    assert analysis["precision"] == pytest.approx(0.5) and analysis["recall"] == pytest.approx(0.5)
    assert analysis["f1"] == pytest.approx(0.5)
    assert analysis["uf1"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    assert block["strs"] == pytest.approx(0.375)


def test_the_analysis_leaves_out_pairs_whose_true_emotion_is_not_a_class():
    scores = analysis_scores([("a", "a"), ("a", None), ("b", "others")], ["a", "b"])
    assert scores["pairs"] == 1 and scores["per_class"]["a"]["tp"] == 1 and scores["per_class"]["b"]["fp"] == 0


def record(video_file: str, onset: int, offset: int, emotion: str = "surprise", fps: float = 30.0, **extra) -> ClipRecord:
    return ClipRecord(
        "s1", f"{video_file}@{onset}", video_file, onset, onset, offset, emotion, 0, fps=fps, n_frames=1000, extra=extra
    )


def row(video: str, onset: int, offset: int, emotion: str = "surprise", fps: float = 30.0, status: str = "ok") -> dict:
    return {
        "video": video,
        "status": status,
        "clip_id": "",
        "onset": onset,
        "offset": offset,
        "onset_s": onset / fps,
        "offset_s": offset / fps,
        "spot_score": 1.0,
        "emotion": emotion,
    }


def test_a_table_against_records_maps_videos_and_keeps_the_scope_explicit():
    records = [
        record("/data/s15/long1", 10, 19, video="15_0101", type="micro"),
        record("/data/s15/long1", 100, 160, "happiness", video="15_0101", type="macro"),
        record("/data/s16/long2", 40, 49, video="16_0102"),  # no type: 9 frames at 30 fps, micro
        record("/data/s17/long3", 5, 14),  # no extra["video"]: the path is the video; not scored
    ]
    rows = [
        row("/data/s15/long1", 10, 19),
        row("/data/s15/long1", 600, 609, "happiness"),
        {"video": "/data/s16/long2", "status": "error", "reason": "truncated"},
        row("/data/other.mp4", 0, 9),
    ]
    report = evaluate_table(rows, records)
    assert set(report["per_video"]) == {"15_0101", "16_0102"}
    assert report["per_video"]["15_0101"]["path"] == "/data/s15/long1"
    assert counts(report["per_video"]["15_0101"][MICRO]) == (1, 1, 0)
    assert counts(report["per_video"]["15_0101"][MACRO]) == (0, 0, 1)
    assert report["per_video"]["16_0102"]["status"] == "error" and report["failed"] == ["16_0102"]
    assert counts(report["per_video"]["16_0102"]["overall"]) == (0, 0, 1)  # a failed video's intervals are missed
    assert report["not_scored"] == ["/data/s17/long3"] and report["unannotated_videos"] == ["/data/other.mp4"]
    assert counts(report["overall"]) == (1, 1, 2) and report["videos"] == 2
    # the user says the annotations cover every video: the unannotated one's spot is a false positive
    negative = evaluate_table(rows, records, unannotated="negative")
    assert counts(negative["per_video"]["/data/other.mp4"]["overall"]) == (0, 1, 0)
    assert counts(negative["overall"]) == (1, 2, 2)
    # a DataFrame (mer.predict's table) gives the same counts as its rows
    assert counts(evaluate_table(pd.DataFrame(rows), records)["overall"]) == (1, 1, 2)


def test_emotions_are_mapped_to_the_models_classes_and_a_mismatch_drops_the_analysis():
    records = [record("v.mp4", 10, 19, "disgust"), record("v.mp4", 100, 109, "others")]
    columns = {"p_emotion": 0.9, "p_negative": 0.9, "p_positive": 0.05, "p_surprise": 0.05, "aus": ""}
    rows = [row("v.mp4", 10, 19, "negative") | columns, row("v.mp4", 100, 109, "negative") | columns]
    report = evaluate_table(rows, records, label_map="megc3")
    # "others" is not a megc3 class: its TP pair is spotted but left out of the analysis
    assert report["overall"]["tp"] == 2 and report["overall"]["analysis"]["pairs"] == 1
    assert report["overall"]["analysis"]["f1"] == 1.0 and report["overall"]["strs"] == 1.0
    mismatch = evaluate_table(rows, records, label_map="dfme7")
    assert "not those of the label map dfme7" in mismatch["analysis_note"]
    assert mismatch["overall"]["tp"] == 2 and mismatch["overall"]["strs"] is None


def test_refuses_rows_of_annotated_intervals_and_a_video_spread_over_two_files():
    records = [record("v.mp4", 10, 19)]
    with pytest.raises(ValueError, match="annotated intervals"):
        evaluate_table([row("v.mp4", 10, 19) | {"clip_id": "clip1"}], records)
    with pytest.raises(ValueError, match="'x' is in two files, a.mp4 and b.mp4: one video is one file"):
        evaluate_table([], [record("a.mp4", 0, 9, video="x"), record("b.mp4", 0, 9, video="x")])
    with pytest.raises(ValueError, match="a.mp4 holds two annotated videos, 'x' and 'y'"):
        evaluate_table([], [record("a.mp4", 0, 9, video="x"), record("a.mp4", 20, 29, video="y")])
    with pytest.raises(ValueError, match="unannotated"):
        evaluate_table([], records, unannotated="all")


# ---- the long-video readers' records as ground truth --------------------------------------------


def score_config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("score", overrides=list(overrides))


def test_samm_lv_intervals_without_emotion_are_the_ground_truth_by_video_and_type(tmp_path):
    from mer.score import read_truth

    root = samm_lv_folders(tmp_path / "SAMMLV")
    rows = [  # no emotion column, as the releases ship; frame numbers from 1 (0: not coded)
        [6, "006_1_1", 1, 5, 10, 12, 8, "Micro - 1/2", "4", None],
        [6, "006_1_2", 1, 15, 25, 40, 26, "Macro", "12", None],
        [7, "007_3_1", 3, 3, -1, 28, 26, "Macro", "1+2", None],
        [7, "007_3_2", 3, 0, 8, 12, 5, "Micro - 1/2", "4", "onset not coded"],  # the apex starts it
    ]
    path = write_workbook(tmp_path / "SAMM_LongVideos_V2_Release.xlsx", {"FACS": SAMM_LV_PREAMBLE + [SAMM_LV_HEADER] + rows})
    truth = read_truth(score_config("data=samm_lv", f"data.annotations={path}", f"data.root={root}"))  # as mer-score reads it
    assert [r.clip_id for r in truth] == ["006_1_1", "006_1_2", "007_3_1", "007_3_2"] and not truth.skipped
    assert {r.emotion for r in truth} == {"unknown"}  # kept: every interval counts in spotting
    assert [(r.extra["video"], r.extra["type"]) for r in truth] == [
        ("006_1", "micro"),
        ("006_1", "macro"),
        ("007_3", "macro"),
        ("007_3", "micro"),
    ]
    own = read_annotations(path, format="samm_lv", root=root)  # the format's own map is the same one-class 'all'
    assert [(r.clip_id, r.label) for r in own] == [(r.clip_id, 0) for r in truth]
    video = {r.extra["video"]: r.path for r in truth}
    spots = [  # positions in the long videos (image n is position n - 1); 200 fps: micro up to 20 frames here
        row(video["006_1"], 4, 11, fps=200),  # 006_1_1 exactly: micro TP
        row(video["006_1"], 16, 38, fps=200),  # 23 of 26 frames of 006_1_2: macro TP
        row(video["006_1"], 30, 33, fps=200),  # inside 006_1_2 but micro: micro FP
        row(video["007_3"], 7, 11, fps=200),  # 007_3_2 (onset from its apex): micro TP; 007_3_1 missed
    ]
    report = evaluate_table(spots, truth, micro_max_s=0.1, label_map="all")
    assert set(report["per_video"]) == {"006_1", "007_3"} and report["per_video"]["006_1"]["path"] == video["006_1"]
    assert counts(report["per_video"]["006_1"][MICRO]) == (1, 1, 0)
    assert counts(report["per_video"]["006_1"][MACRO]) == (1, 0, 0)
    assert counts(report["per_video"]["007_3"][MICRO]) == (1, 0, 0)
    assert counts(report["per_video"]["007_3"][MACRO]) == (0, 0, 1)
    assert counts(report[MICRO]) == (2, 1, 0) and counts(report[MACRO]) == (1, 0, 1) and counts(report["overall"]) == (3, 1, 1)
    # no emotion coded: nothing to analyse, and nothing to warn about
    assert report["overall"]["strs"] is None and report["analysis_note"] == ""


def test_casme_sq_intervals_are_the_ground_truth_by_video_and_type(tmp_path):
    from mer.score import read_truth

    rows = [  # participant, video_expression, onset, apex, offset, AUs, emotion, type, self-report
        [1, "disgust1_1", 5, 10, 20, "4", "negative", "micro-expression", "disgust"],
        [1, "disgust1_2", 22, 0, 30, "12", "positive", "macro-expression", "happy"],  # apex 0: not coded
        [2, "anger1_1", 3, 8, 0, "12B", "surprise", "micro-expression", None],  # offset 0: the apex
        [2, "anger1_3", 12, 15, 25, "(5)", "others", "macro-expression", None],
    ]
    path, root = write_casme_sq(tmp_path, rows)
    quoted = f"data.annotations='{path}'", f"data.root='{root}'"  # a Hydra value with parentheses is quoted: CAS(ME)^2
    truth = read_truth(score_config("data=casme_sq", *quoted))
    assert len(truth) == 4 and not truth.excluded  # 'others' too: megc3 would leave it out, spotting counts it
    s15, s16 = "s15/15_0101disgustingteeth", "s16/16_0401girlcrashing"
    assert [(r.extra["video"], r.extra["type"]) for r in truth] == [
        (s15, "micro"),
        (s15, "macro"),
        (s16, "micro"),
        (s16, "macro"),
    ]
    video = {r.extra["video"]: r.path for r in truth}
    spots = [  # 30 fps: micro up to 0.5 s, 15 frames
        row(video[s15], 4, 19, "negative"),  # disgust1_1 exactly (15 frames): micro TP, rightly recognised
        row(video[s16], 8, 25, "negative"),  # 14 of 18 frames of anger1_3 (17 frames): macro TP; its 'others' is no class
    ]
    report = evaluate_table(spots, truth, label_map="megc3")
    assert counts(report["per_video"][s15][MICRO]) == (1, 0, 0) and counts(report["per_video"][s15][MACRO]) == (0, 0, 1)
    assert counts(report["per_video"][s16][MICRO]) == (0, 0, 1) and counts(report["per_video"][s16][MACRO]) == (1, 0, 0)
    assert counts(report["overall"]) == (2, 0, 2)
    analysis = report["overall"]["analysis"]
    assert analysis["pairs"] == 1 and analysis["classes"] == ["negative", "positive", "surprise"]


def test_a_composite_of_long_video_sets_is_one_ground_truth_and_its_report_names_each_file(tmp_path):
    from mer.score import read_truth, report_spotting

    root = samm_lv_folders(tmp_path / "SAMMLV")
    lv_rows = [[6, "006_1_1", 1, 5, 10, 12, 8, "Micro - 1/2", "4", None]]
    samm_lv = write_workbook(tmp_path / "lv.xlsx", {"Sheet1": [SAMM_LV_HEADER, *lv_rows]})
    casme_sq, casme_sq_root = write_casme_sq(tmp_path, [[1, "disgust1_1", 5, 10, 20, "4", "negative", "micro-expression", None]])
    sets = {"samm_lv": (samm_lv, root), "casme_sq": (casme_sq, casme_sq_root)}
    cfg = score_config(
        "data=composite",
        "evaluate.spotting=true",
        *[
            f"+data.datasets.{name}={{format: {name}, annotations: '{path}', root: '{folder}'}}"
            for name, (path, folder) in sets.items()
        ],
    )
    truth = read_truth(cfg)
    assert [(r.dataset, r.emotion, r.extra["video"]) for r in truth] == [
        ("samm_lv", "unknown", "006_1"),
        ("casme_sq", "negative", "s15/15_0101disgustingteeth"),
    ]
    table = tmp_path / "spots.csv"
    pd.DataFrame([row(truth[0].path, 4, 11, fps=200), row(truth[1].path, 4, 19, "negative")]).to_csv(table, index=False)
    report = json.loads(report_spotting(table, truth, cfg).read_text())
    assert report["annotations"] == {name: str(path) for name, (path, _) in sets.items()}
    assert set(report["per_video"]) == {"006_1", "s15/15_0101disgustingteeth"} and counts(report[MICRO]) == (2, 0, 0)
    assert (
        report["micro"]["analysis"]["pairs"] == 1
    )  # megc3, the composite's map: CAS(ME)^2's negative; SAMM-LV's unknown is no class


# ---- mer-score on tiny synthetic long videos ---------------------------------------------------

CLASSES = ["happiness", "sadness", "anger", "contempt", "fear", "disgust", "surprise"]  # dfme7


def fake_model(says: str):
    """A stand-in for a trained model (no training here) that recognises every clip as ``says``."""
    import torch

    from mer.scoring.models import ScoringModel

    def run(clips: torch.Tensor) -> dict:
        b, t = clips.shape[0], clips.shape[2]
        emotion = np.full((b, len(CLASSES)), 0.05)
        emotion[:, CLASSES.index(says)] = 0.7
        return {"emotion": emotion, "clip_aus": np.zeros((b, 1)), "frame_aus": np.zeros((b, t, 1))}

    config = OmegaConf.create({"clip_sampler": {"name": "uniform", "num_frames": 4, "span": "event"}})
    spec = {"num_frames": 4, "size": 32, "representation": "frames"}
    return lambda path, device: ScoringModel(run, config, CLASSES, [12], input=spec, path=str(path), digest="0" * 64)


def test_mer_score_evaluates_its_spots_against_annotations_of_long_videos(tmp_path, monkeypatch):
    from mer.score import score

    videos = []
    for seed in (1, 2):
        path = tmp_path / f"long{seed}.mp4"
        write_long_video(path, seconds=4.0, fps=30, n_events=2, size=96, seed=seed, blink_rate=0.0)
        videos.append(path)
    events = {str(path): read_long_video_info(path).events for path in videos}
    annotations = tmp_path / "long.csv"
    with open(annotations, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["subject", "clip", "path", "onset", "apex", "offset", "emotion", "aus", "fps"])
        for path in videos:
            for k, e in enumerate(events[str(path)]):
                writer.writerow(["s1", f"{path.stem}_{k}", path.name, e.onset, e.apex, e.offset, e.emotion, e.aus, 30])
    # the same recording again under a name the annotations do not know: with unannotated=negative its spots are FPs
    unannotated = tmp_path / "unannotated.mp4"
    unannotated.write_bytes(videos[0].read_bytes())
    says = events[str(videos[0])][0].emotion
    monkeypatch.setattr("mer.scoring.models.load_scoring_model", fake_model(says))
    output = tmp_path / "results.csv"

    def config(*overrides: str):
        evaluation = ["data=csv", f"data.annotations={annotations}", "evaluate.spotting=true", "evaluate.unannotated=negative"]
        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            return compose("score", overrides=[*evaluation, *overrides])

    summary = score(
        config(
            "checkpoint=fake.pt",
            f"input=[{unannotated}]",
            f"output={output}",
            "face.enabled=false",
            "num_workers=0",
            "progress=false",
            f"cache_dir={tmp_path / 'cache'}",
        )
    )
    assert summary["error"] == 0 and summary["ok"] + summary["no_event"] == 3

    assert report_path(output) == tmp_path / "results.spotting.json"
    report = json.loads(report_path(output).read_text())
    rows = pd.read_csv(output, keep_default_na=False)
    assert rows.clip_id.eq("").all()  # spotted, not the annotated intervals scored
    spots = rows[rows.status == "ok"]
    assert report["videos"] == 3 and report["annotated_intervals"] == 4 and report["iou"] == 0.5
    for path in videos:
        mine = report["per_video"][str(path)]
        found = spots[spots.video == str(path)]
        truth = [(e.onset, e.offset) for e in events[str(path)]]
        expected = evaluate_spotting(list(zip(found.onset, found.offset)), truth)
        assert counts(mine["overall"]) == counts(expected)
        assert mine["overall"]["tp"] + mine["overall"]["fp"] == len(found)
        assert mine["overall"]["tp"] + mine["overall"]["fn"] == len(truth)
    negative = report["per_video"][str(unannotated)]["overall"]
    assert counts(negative) == (0, int((spots.video == str(unannotated)).sum()), 0) and negative["fp"] >= 1
    overall = report["overall"]
    assert overall["tp"] + overall["fp"] == len(spots) and overall["tp"] + overall["fn"] == 4
    assert overall["tp"] >= 1  # the spotter finds something on these clean videos
    assert counts(report[MACRO]) == (0, 0, 0)  # every event and every spot is under 0.5 s
    # STRS: every spot recognised as `says`; the classes are the annotated emotions. On the TP pairs
    # `says` has recall 1 and precision (its pairs) / (all pairs), every other class 0 and 0.
    analysis = overall["analysis"]
    classes = sorted({e.emotion for es in events.values() for e in es})
    assert analysis["classes"] == classes and analysis["pairs"] == overall["tp"]
    right = analysis["per_class"][says]["tp"]
    p, r = right / overall["tp"] / len(classes), (1 / len(classes) if right else 0.0)
    assert analysis["f1"] == pytest.approx(2 * p * r / (p + r) if p + r else 0.0)
    assert overall["strs"] == pytest.approx(overall["f1"] * analysis["f1"])

    # two shards' tables: merge=... with the same annotations evaluates the merged table as one
    from mer.score import main

    for k in range(2):
        mine = [str(v) for v in [*videos, unannotated][k::2]]
        rows[rows.video.isin(mine)].to_csv(tmp_path / f"merged.part-{k}-of-2.csv", index=False)
    main.__wrapped__(config(f"merge={tmp_path / 'merged.csv'}"))
    with pytest.raises(ValueError, match="give data=<format> data.annotations=FILE"):
        main.__wrapped__(OmegaConf.merge(config(f"merge={tmp_path / 'merged.csv'}"), {"data": None}))
    merged = json.loads(report_path(tmp_path / "merged.csv").read_text())
    assert merged["table"] == str(tmp_path / "merged.csv")
    assert {k: merged[k] for k in ("overall", "micro", "macro", "per_video")} == {
        k: report[k] for k in ("overall", "micro", "macro", "per_video")
    }
