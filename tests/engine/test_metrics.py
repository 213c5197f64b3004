import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score

from mer.engine.metrics import au_metrics, choose_au_thresholds, classification_metrics, present_aus
from mer.engine.predictions import Predictions
from mer.engine.reports import named_metrics, predictions_table


def test_hand_computed_case():
    # 3 classes; class 0: TP 2 FN 1; class 1: TP 1 FP 1; class 2: TP 0 FN 1 FP 1
    y_true = [0, 0, 0, 1, 2]
    y_pred = [0, 0, 1, 1, 0]
    m = classification_metrics(y_true, y_pred, 3)
    f1 = [2 * 2 / (2 * 2 + 1 + 1), 2 * 1 / (2 * 1 + 1 + 0), 0.0]  # 2TP / (2TP + FP + FN)
    recall = [2 / 3, 1.0, 0.0]
    assert m["per_class_f1"] == pytest.approx(f1)
    assert m["uf1"] == pytest.approx(np.mean(f1)) and m["uar"] == pytest.approx(np.mean(recall))
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["confusion"] == [[2, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert m["support"] == [3, 1, 1]


def test_agrees_with_scikit_learn_macro_scores():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 7, 300)
    y_pred = np.where(rng.random(300) < 0.6, y_true, rng.integers(0, 7, 300))
    m = classification_metrics(y_true, y_pred, 7)
    assert m["uf1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert m["uar"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))


def test_a_class_absent_everywhere_does_not_count():
    m = classification_metrics([0, 1, 1], [0, 1, 0], 4)
    assert np.isnan(m["per_class_f1"][3]) and np.isnan(m["per_class_recall"][2])
    assert m["uf1"] == pytest.approx(np.mean([2 / 3, 2 / 3]))
    assert m["uar"] == pytest.approx(np.mean([1.0, 0.5]))


def test_a_predicted_but_absent_class_lowers_uf1_not_uar():
    m = classification_metrics([0, 0], [0, 1], 2)
    assert m["uf1"] == pytest.approx(np.mean([2 / 3, 0.0])) and m["uar"] == pytest.approx(0.5)


def test_au_f1_per_au_and_mean_over_occurring_aus():
    y_true = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0]])
    y_score = np.array([[0.9, 0.2, 0.7], [0.4, 0.8, 0.1], [0.1, 0.6, 0.0]])
    m = au_metrics(y_true, y_score)
    assert m["per_au_f1"][0] == pytest.approx(2 / 3) and m["per_au_f1"][1] == pytest.approx(1.0)
    assert np.isnan(m["per_au_f1"][2])  # AU 3 never occurs: no F1, not in the mean
    assert m["au_f1"] == pytest.approx((2 / 3 + 1.0) / 2)


def test_au_auc_tells_a_well_ranked_low_score_from_no_signal():
    y_true = np.array([[1, 1, 1, 0], [1, 0, 1, 0], [0, 1, 1, 0], [0, 0, 1, 0]])
    y_score = np.array(
        [
            [0.40, 0.3, 0.9, 0.1],  # AU A: positives score 0.40 and 0.30, above the negatives,
            [0.30, 0.1, 0.9, 0.1],  # yet all under the threshold: F1 0 but AUC 1
            [0.20, 0.2, 0.9, 0.1],  # AU B: each positive above one negative, below the other
            [0.10, 0.4, 0.9, 0.1],
        ]
    )
    m = au_metrics(y_true, y_score)
    assert m["per_au_f1"][0] == 0.0 and m["per_au_auc"][0] == pytest.approx(1.0)
    # AU B: positives 0.3, 0.2; negatives 0.1, 0.4 -> pairs won: (0.3>0.1, 0.2>0.1) of 4 = 0.5
    assert m["per_au_auc"][1] == pytest.approx(0.5)
    assert np.isnan(m["per_au_auc"][2])  # present in every clip: nothing to rank against
    assert np.isnan(m["per_au_auc"][3])  # never present
    assert m["au_auc"] == pytest.approx(0.75)  # mean over the AUs that have an AUC


def test_au_thresholds_chosen_by_f1_on_the_given_clips():
    y_true = np.array([[1, 0, 1], [1, 0, 1], [0, 0, 0], [0, 0, 0]])
    y_score = np.array([[0.30, 0.9, 0.80], [0.20, 0.1, 0.90], [0.10, 0.2, 0.05], [0.25, 0.3, 0.10]])
    thresholds = choose_au_thresholds(y_true, y_score)
    # AU A: at 0.15 or 0.20 the clips 0.30, 0.20, 0.25 are called: F1 = 2*2 / (3 + 2) = 0.8, the best;
    # at 0.25: 0.30, 0.25 (F1 0.5); at 0.30: 0.30 alone (F1 2/3). The tie goes to the value nearer 0.5.
    assert thresholds[0] == pytest.approx(0.20)
    assert thresholds[1] == 0.5  # never present here: nothing to choose from
    # AU C: every value from 0.15 to 0.80 separates perfectly; the one nearest 0.5 is kept
    assert thresholds[2] == pytest.approx(0.5)
    assert au_metrics(y_true, y_score, thresholds)["per_au_f1"][0] == pytest.approx(0.8)


def test_au_f1_at_per_clip_thresholds_of_pooled_folds():
    # two folds' predictions pooled, each decided at its own model's threshold
    y_true = np.array([[1], [0], [1], [0]])
    y_score = np.array([[0.3], [0.2], [0.6], [0.55]])
    per_clip = np.array([[0.25], [0.25], [0.7], [0.7]])  # fold 1: 0.25, fold 2: 0.7
    # called: clip 0 (tp) only -> precision 1, recall 1/2, F1 2/3; at 0.5 everywhere: clips 2 (tp), 3 (fp) -> 1/2
    assert au_metrics(y_true, y_score, per_clip)["au_f1"] == pytest.approx(2 / 3)
    assert au_metrics(y_true, y_score)["au_f1"] == pytest.approx(0.5)


def test_present_aus_names_the_aus_at_or_above_their_thresholds():
    probs = np.array([[0.6, 0.2, 0.5], [0.1, 0.3, 0.4]])
    assert present_aus(probs, 0.5, [4, 7, 23]) == ["AU04+AU23", ""]
    assert present_aus(probs, [0.7, 0.25, 0.45], [4, 7, 23]) == ["AU23", "AU07"]
    assert present_aus(np.zeros((2, 0)), 0.5, []) == ["", ""]  # a model without the AU head
    # decided on the probability as a table writes it: 0.4999996 is written 0.5, which meets 0.5
    assert present_aus(np.array([[0.4999996, 0.4999994]]), 0.5, [4, 7]) == ["AU04"]


def test_per_dataset_figures_of_pooled_predictions():
    # set A: true 0 0 1 2, predicted 0 1 1 2 -> F1 2/3, 2/3, 1; recall 1/2, 1, 1
    # set B: true 1 1 2, predicted 1 2 2 -> class 0 absent from both (left out); F1 2/3, 2/3; recall 1/2, 1
    rows = [("A", 0, 0), ("B", 1, 1), ("A", 0, 1), ("B", 1, 2), ("A", 1, 1), ("A", 2, 2), ("B", 2, 2)]
    pooled = Predictions(
        clip_ids=[f"{s}/c{i}" for i, (s, _, _) in enumerate(rows)],
        subjects=[f"{s}/s1" for s, _, _ in rows],
        true=[t for _, t, _ in rows],
        probs=[np.eye(3)[p].tolist() for _, _, p in rows],
        datasets=[s for s, _, _ in rows],
    )
    per_dataset = pooled.metrics(3)["per_dataset"]
    assert list(per_dataset) == ["A", "B"]
    assert per_dataset["A"] == pytest.approx({"uf1": (2 / 3 + 2 / 3 + 1) / 3, "uar": (1 / 2 + 1 + 1) / 3, "clips": 4})
    assert per_dataset["B"] == pytest.approx({"uf1": 2 / 3, "uar": (1 / 2 + 1) / 2, "clips": 3})
    full = classification_metrics(pooled.true, pooled.pred, 3)  # the whole: not a mean of the sets
    assert pooled.metrics(3)["uf1"] == pytest.approx(full["uf1"])
    named = named_metrics(pooled.metrics(3), ["negative", "positive", "surprise"], [])
    assert named["per_dataset"] == per_dataset
    table = predictions_table(pooled, ["negative", "positive", "surprise"], [])
    assert table.columns[0] == "dataset" and table["dataset"].tolist() == [s for s, _, _ in rows]
    # a part without sets (a fold saved before they were recorded): no per-set figures rather than wrong ones
    older = Predictions(clip_ids=["C/c9"], subjects=["C/s1"], true=[0], probs=[[1.0, 0.0, 0.0]])
    merged = Predictions().extend(pooled).extend(older)
    assert merged.datasets == [] and "per_dataset" not in merged.metrics(3)
    assert "per_dataset" not in Predictions(**{**pooled.__dict__, "datasets": []}).metrics(3)
