"""Classification metrics computed with scikit-learn, plus ECE and reliability bins."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)


def positive_score(probs: np.ndarray, positive: list[int]) -> np.ndarray:
    """Probability of the positive ("lump") group: sum over the ``positive`` class columns."""
    return np.asarray(probs)[:, positive].sum(axis=1)


def ece_bins(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> dict:
    """Equal-width confidence bins: edges, per-bin accuracy, confidence and count."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    acc = np.bincount(idx, weights=correct.astype(float), minlength=n_bins)
    conf = np.bincount(idx, weights=confidence, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc, conf = acc / count, conf / count
    return {"edges": edges, "accuracy": acc, "confidence": conf, "count": count}


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """ECE of the top-1 prediction: ``sum_b |B|/n * |acc(B) - conf(B)|``."""
    probs = np.asarray(probs)
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(labels)
    b = ece_bins(conf, correct, n_bins)
    mask = b["count"] > 0
    gap = np.abs(b["accuracy"][mask] - b["confidence"][mask])
    return float((b["count"][mask] / len(conf) * gap).sum())


def classification_metrics(
    labels: np.ndarray,
    probs: np.ndarray,
    class_names: list[str],
    positive: list[int],
    pred: np.ndarray | None = None,
    n_bins: int = 15,
) -> dict:
    """Accuracy, per-class/macro P/R/F1, confusion matrix, ROC-AUC, PR-AUC, ECE.

    ``pred`` defaults to the arg-max; ROC-AUC and PR-AUC are computed on the positive-group
    score (lump vs no lump); with more than two classes the one-vs-rest macro ROC-AUC is
    added as ``roc_auc_ovr_macro``. Undefined AUCs (one class only) are ``None``.
    """
    labels = np.asarray(labels).astype(int)
    probs = np.asarray(probs, dtype=np.float64)
    k = len(class_names)
    pred = probs.argmax(axis=1) if pred is None else np.asarray(pred).astype(int)
    p, r, f, s = precision_recall_fscore_support(
        labels, pred, labels=list(range(k)), zero_division=0
    )
    y_pos = np.isin(labels, positive).astype(int)
    score = positive_score(probs, positive)
    two = len(np.unique(y_pos)) == 2
    out = {
        "n": len(labels),
        "accuracy": float(accuracy_score(labels, pred)),
        "precision_macro": float(p.mean()),
        "recall_macro": float(r.mean()),
        "f1_macro": float(f.mean()),
        "per_class": {
            c: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(s[i]),
            }
            for i, c in enumerate(class_names)
        },
        "confusion_matrix": confusion_matrix(labels, pred, labels=list(range(k))).tolist(),
        "roc_auc": float(roc_auc_score(y_pos, score)) if two else None,
        "pr_auc": float(average_precision_score(y_pos, score)) if two else None,
        "ece": expected_calibration_error(probs, labels, n_bins),
    }
    pred_pos = np.isin(pred, positive)
    tp = int((pred_pos & (y_pos == 1)).sum())
    tn = int((~pred_pos & (y_pos == 0)).sum())
    out["sensitivity"] = tp / max(1, int(y_pos.sum()))
    out["specificity"] = tn / max(1, int((y_pos == 0).sum()))
    if k > 2 and len(np.unique(labels)) == k:
        out["roc_auc_ovr_macro"] = float(roc_auc_score(labels, probs, multi_class="ovr"))
    return out
