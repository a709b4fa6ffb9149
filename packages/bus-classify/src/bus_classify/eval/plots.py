"""Matplotlib figures: confusion matrix, ROC, PR, reliability diagram (PNG, atomic writes)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from bus_classify.data.io import atomic_path
from bus_classify.eval.metrics import ece_bins


def _save(fig, path: Path) -> Path:
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return Path(path)


def plot_confusion(cm, class_names: list[str], path: Path, title: str = "Confusion matrix"):
    cm = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(3.6, 3.2))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(
            j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black"
        )
    ax.set_xticks(range(len(class_names)), class_names, rotation=30)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    return _save(fig, path)


def plot_roc_pr(
    y_pos: np.ndarray,
    score: np.ndarray,
    roc_path: Path,
    pr_path: Path,
    roc_auc: float | None,
    pr_auc: float | None,
) -> tuple[Path, Path]:
    fpr, tpr, _ = roc_curve(y_pos, score)
    fig, ax = plt.subplots(figsize=(3.6, 3.4))
    ax.plot(fpr, tpr, label=f"AUC {roc_auc:.3f}" if roc_auc is not None else None)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity (lump)")
    ax.set_title("ROC")
    ax.legend(loc="lower right")
    a = _save(fig, roc_path)
    prec, rec, _ = precision_recall_curve(y_pos, score)
    fig, ax = plt.subplots(figsize=(3.6, 3.4))
    ax.plot(rec, prec, label=f"AP {pr_auc:.3f}" if pr_auc is not None else None)
    ax.axhline(float(np.mean(y_pos)), color="k", ls=":", lw=0.8)
    ax.set_xlabel("recall (lump)")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall")
    ax.legend(loc="lower left")
    return a, _save(fig, pr_path)


def plot_reliability(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, n_bins: int = 10
) -> Path:
    """``curves``: name -> (probs, labels); one line per curve plus the diagonal."""
    fig, ax = plt.subplots(figsize=(3.8, 3.6))
    ax.plot([0, 1], [0, 1], "k:", lw=0.8, label="perfect")
    for name, (probs, labels) in curves.items():
        conf = probs.max(axis=1)
        b = ece_bins(conf, probs.argmax(axis=1) == labels, n_bins)
        m = b["count"] > 0
        ax.plot(b["confidence"][m], b["accuracy"][m], "o-", label=name)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability diagram")
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)
