"""tasks.metrics: each task's scores on small hand-computed examples, and multilabel threshold tuning."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from tasks.kinds.multilabel import score as score_multilabel
from tasks.kinds.multilabel import tune_thresholds
from tasks.kinds.ner import score as score_ner
from tasks.kinds.regression import score as score_regression
from tasks.metrics import score_classif


def _preds(values) -> list[dict]:
    return [{"pred": v} for v in values]


def test_classif_scores():
    gold = ["a", "a", "b", "b", "c"]
    m = score_classif(["a", "b", "c"], gold, _preds(["a", "b", "b", "b", "a"]))
    # a: P 1/2 R 1/2 F 1/2; b: P 2/3 R 1 F 0.8; c: never predicted -> 0
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["f1_macro"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert m["f1_weighted"] == pytest.approx((0.5 * 2 + 0.8 * 2 + 0.0 * 1) / 5)
    assert m["per_class"] == {
        "a": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2},
        "b": {"precision": pytest.approx(2 / 3), "recall": 1.0, "f1": pytest.approx(0.8), "support": 2},
        "c": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
    }
    assert m["confusion_matrix"] == {"labels": ["a", "b", "c"], "matrix": [[1, 1, 0], [0, 2, 0], [1, 0, 0]]}


def test_classif_perfect():
    m = score_classif(("x", "y"), ["x", "y"], _preds(["x", "y"]))
    assert (m["accuracy"], m["f1_macro"], m["f1_weighted"]) == (1.0, 1.0, 1.0)


def test_multilabel_scores():
    gold = [["a", "b"], ["b"], [], ["c"]]
    m = score_multilabel(["a", "b", "c"], gold, _preds([["a"], ["b", "c"], [], ["c"]]))
    # a: tp1 -> F1 1; b: tp1 fn1 -> 2/3; c: tp1 fp1 -> 2/3; micro: tp3 fp1 fn1 -> 0.75
    assert m["f1_micro"] == pytest.approx(0.75)
    assert m["f1_macro"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert m["subset_accuracy"] == 0.5
    assert m["per_label"] == {"a": {"f1": 1.0, "support": 1}, "b": {"f1": pytest.approx(2 / 3), "support": 2},
                              "c": {"f1": pytest.approx(2 / 3), "support": 1}}


def test_multilabel_all_empty_is_zero_f1_and_full_subset_accuracy():
    m = score_multilabel(["a", "b"], [[], []], _preds([[], []]))
    assert (m["f1_micro"], m["subset_accuracy"]) == (0.0, 1.0)


def test_regression_scores():
    m = score_regression([], [1.0, 2.0, 3.0], _preds([1.0, 2.0, 5.0]))
    assert m["mse"] == pytest.approx(4 / 3)
    assert m["mae"] == pytest.approx(2 / 3)
    # deviations (-1, 0, 1) and (-5/3, -2/3, 7/3): r = 4 / (sqrt(2) * sqrt(78) / 3)
    assert m["pearson"] == pytest.approx(12 / math.sqrt(156))
    assert m["spearman"] == pytest.approx(1.0)


@pytest.mark.parametrize("gold, pred", [
    ([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]),  # constant gold
    ([1.0, 2.0, 3.0], [2.5, 2.5, 2.5]),  # constant predictions
    ([1.0], [2.0]),  # a single row
])
def test_regression_correlation_on_constant_input_is_none_without_warnings(gold, pred):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = score_regression([], gold, _preds(pred))
    assert (m["pearson"], m["spearman"]) == (None, None)
    assert m["mse"] == pytest.approx(np.mean((np.array(gold) - np.array(pred)) ** 2))


def test_ner_scores_are_per_entity_and_per_word():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-LOC"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["O", "B-LOC"]]
    m = score_ner(["O", "B-LOC", "I-LOC", "B-PER", "I-PER"], gold, _preds(pred))
    # gold entities PER, LOC, LOC; predicted PER, LOC -> P 1, R 2/3
    assert m["precision"] == 1.0
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(0.8)
    assert m["word_accuracy"] == pytest.approx(5 / 6)
    assert m["per_type"] == {
        "LOC": {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2},
        "PER": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1},
    }


def test_ner_partial_span_is_not_a_match():
    m = score_ner(["O", "B-PER", "I-PER"], [["B-PER", "I-PER", "O"]], _preds([["B-PER", "O", "O"]]))
    assert (m["precision"], m["recall"], m["f1"]) == (0.0, 0.0, 0.0)
    assert m["word_accuracy"] == pytest.approx(2 / 3)


def test_ner_i_without_b_counts_as_the_entity_decode_returns():
    # decode's entities() opens a span on a leading I-; scoring must agree
    m = score_ner(["O", "B-PER", "I-PER"], [["B-PER", "I-PER", "O"]], _preds([["I-PER", "I-PER", "O"]]))
    assert m["f1"] == 1.0


# ---- threshold tuning ----------------------------------------------------------------------------------------------

def test_tune_thresholds_per_label_nearest_half_on_ties():
    probs = np.array([
        # a     b     c
        [0.9, 0.60, 0.1],
        [0.3, 0.70, 0.2],
        [0.2, 0.65, 0.3],
        [0.1, 0.80, 0.4],
    ])
    gold = [["a"], ["a"], [], ["b"]]
    thresholds = tune_thresholds(["a", "b", "c"], gold, probs)
    # a: F1 1 for t in {0.25, 0.3} -> 0.3 is nearer 0.5; b: F1 1 for t in {0.75, 0.8} -> 0.75;
    # c: no positives, and t = 0.5 predicts none (F1 counted as 1)
    assert thresholds == {"a": 0.3, "b": 0.75, "c": 0.5}
    assert all(type(t) is float for t in thresholds.values())


def test_tune_thresholds_keeps_half_when_it_is_already_best():
    thresholds = tune_thresholds(["a"], [["a"], []], np.array([[0.9], [0.1]]))
    assert thresholds == {"a": 0.5}


def test_tune_thresholds_stays_inside_the_grid():
    # the positive has the lowest probability: the best reachable is the lowest threshold, 0.05
    thresholds = tune_thresholds(["a"], [["a"], [], []], np.array([[0.06], [0.5], [0.9]]))
    assert thresholds == {"a": 0.05}
