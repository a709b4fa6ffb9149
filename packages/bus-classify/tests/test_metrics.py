"""Metrics vs scikit-learn, ECE by hand, temperature scaling, threshold tuning."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score

from bus_classify.eval.calibration import (
    fit_temperature,
    fit_temperature_bias,
    nll,
    softmax,
    threshold_for_macro_f1,
    threshold_for_sensitivity,
)
from bus_classify.eval.evaluate import prevalence_threshold
from bus_classify.eval.metrics import classification_metrics, expected_calibration_error
from bus_classify.eval.report import REQUIRED_KEYS, decide, write_report

Y = np.array([0, 0, 1, 1, 1, 0, 1, 1])
P1 = np.array([0.1, 0.6, 0.8, 0.4, 0.9, 0.2, 0.7, 0.55])
PROBS = np.stack([1 - P1, P1], axis=1)


def test_metrics_match_sklearn():
    m = classification_metrics(Y, PROBS, ["no_lump", "lump"], [1])
    pred = (P1 > 0.5).astype(int)
    assert m["accuracy"] == pytest.approx(accuracy_score(Y, pred))
    assert m["f1_macro"] == pytest.approx(f1_score(Y, pred, average="macro"))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(Y, P1))
    assert m["pr_auc"] == pytest.approx(average_precision_score(Y, P1))
    assert m["confusion_matrix"] == [[2, 1], [1, 4]]
    assert m["sensitivity"] == pytest.approx(4 / 5) and m["specificity"] == pytest.approx(2 / 3)


def test_three_class_lump_group_auc():
    probs = np.array([[0.7, 0.1, 0.2], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.3, 0.3, 0.4]])
    y = np.array([0, 1, 2, 2])
    m = classification_metrics(y, probs, ["benign", "malignant", "normal"], [0, 1])
    assert m["roc_auc"] == pytest.approx(roc_auc_score([1, 1, 0, 0], [0.8, 0.9, 0.4, 0.6]))
    assert m["accuracy"] == 1.0


def test_ece_hand_computed():
    # two bins used: conf 0.9 (2 samples, 1 right) and conf 0.6 (2 samples, 2 right)
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    y = np.array([0, 1, 1, 1])
    expected = 0.5 * abs(0.5 - 0.9) + 0.5 * abs(1.0 - 0.6)
    assert expected_calibration_error(probs, y, n_bins=10) == pytest.approx(expected)


def test_temperature_lowers_nll_on_overconfident_logits():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    clean = np.where(rng.random(400) < 0.75, y, 1 - y)  # 75 % correct
    logits = np.stack([(clean == 0) * 8.0, (clean == 1) * 8.0], axis=1)  # far too confident
    t = fit_temperature(logits, y)
    assert t > 2.0
    assert nll(logits, y, t) < 0.7 * nll(logits, y)
    # at the optimum the confidence is close to the 75 % accuracy
    assert softmax(logits, t).max(axis=1).mean() == pytest.approx(0.75, abs=0.03)


def test_temperature_bias_undoes_a_prior_shift():
    """A class-weighted loss shifts the logit gap; temperature alone cannot undo that, the
    fitted bias does (and recovers the shift)."""
    rng = np.random.default_rng(2)
    gap = rng.normal(0.0, 2.0, 4000)  # true log-odds of class 1
    y = (rng.random(4000) < 1 / (1 + np.exp(-gap))).astype(int)
    logits = np.stack([np.zeros_like(gap), gap + 1.5], axis=1)  # over-predicts class 1
    t = fit_temperature(logits, y)
    tb, b = fit_temperature_bias(logits, y)
    assert tb == pytest.approx(1.0, abs=0.1) and b[0] == 0.0
    assert b[1] == pytest.approx(-1.5, abs=0.15)
    assert nll(logits / tb + b, y) < nll(logits, y, t) - 0.02
    p = softmax(logits / tb + b)
    assert expected_calibration_error(p, y) < 0.5 * expected_calibration_error(
        softmax(logits, t), y
    )
    # already calibrated logits: nothing to fix
    tb0, b0 = fit_temperature_bias(np.stack([np.zeros_like(gap), gap], axis=1), y)
    assert tb0 == pytest.approx(1.0, abs=0.1) and abs(b0[1]) < 0.15


def test_threshold_hits_target_sensitivity():
    rng = np.random.default_rng(1)
    pos = rng.random(200) * 0.6 + 0.4
    neg = rng.random(300) * 0.6
    score = np.concatenate([pos, neg])
    is_pos = np.r_[np.ones(200), np.zeros(300)].astype(bool)
    for target in (0.8, 0.95, 1.0):
        t = threshold_for_sensitivity(score, is_pos, target)
        sens = (score[is_pos] >= t).mean()
        assert sens >= target
        # the largest such threshold: a hair higher falls below the target
        assert (score[is_pos] >= np.nextafter(t, 1)).mean() < target
    with pytest.raises(ValueError):
        threshold_for_sensitivity(score[~is_pos], is_pos[~is_pos])


def test_decide_uses_threshold():
    probs = np.array([[0.7, 0.3], [0.2, 0.8]])
    assert decide(probs, [1], 0.25).tolist() == [1, 1]
    assert decide(probs, [1], 0.5).tolist() == [0, 1]


def test_write_report_keys_and_plots(tmp_path):
    m = write_report(tmp_path, "x", Y, PROBS, ["no_lump", "lump"], softmax(np.log(PROBS), 2.0), 0.5)
    import json

    saved = json.loads((tmp_path / "metrics.json").read_text())
    for k in REQUIRED_KEYS:
        assert k in saved
    assert saved["threshold"] == 0.5 and m["accuracy"] == pytest.approx(0.75)
    for f in ("confusion_matrix.png", "roc.png", "pr.png", "reliability.png", "summary.md"):
        assert (tmp_path / f).stat().st_size > 0


def test_prevalence_threshold_matches_the_share_of_negatives():
    # 3 of 8 are negative: the threshold is the 3/8 quantile of the scores, so exactly the three
    # lowest-scored images fall below it, whatever their labels are
    t = prevalence_threshold(P1, Y == 1)
    assert t == pytest.approx(np.quantile(P1, 3 / 8))
    assert (P1 < t).sum() == 3 and sorted(P1[P1 < t]) == [0.1, 0.2, 0.4]
    assert prevalence_threshold(np.array([0.3, 0.6, 0.9, 0.2]), np.array([1, 1, 1, 0])) == (
        pytest.approx(0.275)
    )


def test_threshold_for_macro_f1_by_hand():
    # sorted lump scores 0.1 0.2 0.4 0.55 0.6 0.7 0.8 0.9 with labels 0 0 1 1 0 1 1 1: cutting
    # between 0.2 and 0.4 classifies all but image 0.6 correctly (macro F1 = mean(0.8, 0.909))
    # and no other cut is as good
    t = threshold_for_macro_f1(PROBS, Y, [1])
    assert t == pytest.approx(0.3)
    best = f1_score(Y, (P1 >= t).astype(int), average="macro")
    assert best == pytest.approx((0.8 + 10 / 11) / 2)
    for c in (0.15, 0.5, 0.575, 0.65):
        assert f1_score(Y, (P1 >= c).astype(int), average="macro") < best


def test_write_report_headline_follows_the_decision_threshold(tmp_path):
    m = write_report(tmp_path, "x", Y, PROBS, ["no_lump", "lump"], decision_threshold=0.3)
    pred = (P1 >= 0.3).astype(int)
    assert m["f1_macro"] == pytest.approx(f1_score(Y, pred, average="macro"))
    assert m["accuracy"] == pytest.approx(7 / 8)
    d = m["details"]
    assert d["decision"]["threshold"] == 0.3 and d["decision"]["f1_macro"] == m["f1_macro"]
    argmax = f1_score(Y, (P1 > 0.5).astype(int), average="macro")
    assert d["argmax"]["f1_macro"] == pytest.approx(argmax) != pytest.approx(m["f1_macro"])
