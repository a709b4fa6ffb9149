"""Turn probabilities into metrics.json, plots and a markdown summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bus_classify.data.io import atomic_write, write_json
from bus_classify.data.sources import positive_classes
from bus_classify.eval.metrics import classification_metrics, positive_score
from bus_classify.eval.plots import plot_confusion, plot_reliability, plot_roc_pr

REQUIRED_KEYS = ("accuracy", "f1_macro", "roc_auc", "pr_auc", "ece", "ece_calibrated", "threshold")


def decide(probs: np.ndarray, positive: list[int], threshold: float) -> np.ndarray:
    """Class decisions: lump group iff its probability >= threshold, then arg-max within the group."""
    probs = np.asarray(probs)
    neg = [i for i in range(probs.shape[1]) if i not in positive]
    is_pos = positive_score(probs, positive) >= threshold
    best_pos = np.asarray(positive)[probs[:, positive].argmax(axis=1)]
    best_neg = np.asarray(neg)[probs[:, neg].argmax(axis=1)]
    return np.where(is_pos, best_pos, best_neg)


def write_report(
    out: Path,
    name: str,
    labels: np.ndarray,
    probs: np.ndarray,
    class_names: list[str],
    probs_calibrated: np.ndarray | None = None,
    threshold: float | None = None,
    extra: dict | None = None,
    pred: np.ndarray | None = None,
    decision_threshold: float | None = None,
) -> dict:
    """Write ``metrics.json``, PNG plots and ``summary.md`` into ``out``; return the metrics.

    Headline accuracy and F1 use the arg-max decision (or ``pred``), or, with
    ``decision_threshold``, the decision "lump iff the lump score of ``probs`` >= it" (its
    metrics also under ``details.decision``; ``details.argmax`` stays the arg-max). When a tuned
    ``threshold`` is given the metrics of the thresholded calibrated decision are reported under
    ``at_threshold``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pos = positive_classes(class_names)
    m = classification_metrics(labels, probs, class_names, pos, pred=pred)
    cal = probs if probs_calibrated is None else probs_calibrated
    mc = classification_metrics(labels, cal, class_names, pos, pred=pred)
    head = m
    if decision_threshold is not None:
        head = classification_metrics(
            labels, probs, class_names, pos, pred=decide(probs, pos, decision_threshold)
        )
    metrics = {
        "accuracy": head["accuracy"],
        "f1_macro": head["f1_macro"],
        "roc_auc": m["roc_auc"],
        "pr_auc": m["pr_auc"],
        "ece": m["ece"],
        "ece_calibrated": mc["ece"],
        "threshold": threshold,
    }
    details = {"model": name, "argmax": m}
    if decision_threshold is not None:
        details["decision"] = {"threshold": decision_threshold, **head}
    if threshold is not None:
        details["at_threshold"] = classification_metrics(
            labels, cal, class_names, pos, pred=decide(cal, pos, threshold)
        )
    details.update(extra or {})
    metrics["details"] = details
    plot_confusion(
        m["confusion_matrix"], class_names, out / "confusion_matrix.png", f"{name} (arg-max)"
    )
    if threshold is not None:
        plot_confusion(
            details["at_threshold"]["confusion_matrix"],
            class_names,
            out / "confusion_matrix_threshold.png",
            f"{name} (t={threshold:.3f})",
        )
    y_pos = np.isin(labels, pos).astype(int)
    if m["roc_auc"] is not None:
        plot_roc_pr(
            y_pos,
            positive_score(cal, pos),
            out / "roc.png",
            out / "pr.png",
            m["roc_auc"],
            m["pr_auc"],
        )
    curves = {f"raw (ECE {m['ece']:.3f})": (np.asarray(probs), np.asarray(labels))}
    if probs_calibrated is not None:
        curves[f"calibrated (ECE {mc['ece']:.3f})"] = (np.asarray(cal), np.asarray(labels))
    plot_reliability(curves, out / "reliability.png")
    write_json(out / "metrics.json", metrics)
    with atomic_write(out / "summary.md") as f:
        f.write(summary_markdown(name, metrics, class_names))
    return metrics


def _f(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def summary_markdown(name: str, metrics: dict, class_names: list[str]) -> str:
    """A short human-readable report of ``metrics``."""
    d = metrics["details"]
    m = d["argmax"]
    lines = [f"# {name}", "", f"Test images: {m['n']}", "", "| metric | value |", "|---|---|"]
    for k in ("accuracy", "f1_macro", "roc_auc", "pr_auc", "ece", "ece_calibrated", "threshold"):
        lines.append(f"| {k} | {_f(metrics[k])} |")
    lines.append(f"| sensitivity (lump, arg-max) | {_f(m['sensitivity'])} |")
    lines.append(f"| specificity (arg-max) | {_f(m['specificity'])} |")
    if "at_threshold" in d:
        t = d["at_threshold"]
        lines.append(f"| sensitivity at threshold | {_f(t['sensitivity'])} |")
        lines.append(f"| specificity at threshold | {_f(t['specificity'])} |")
    for k in ("temperature", "unparsed", "tta"):
        if k in d:
            lines.append(f"| {k} | {d[k]} |")
    if "gradcam_localization" in d:
        g = d["gradcam_localization"]
        lines.append(
            f"| Grad-CAM mass inside lesion mask ({g['n']} lesions) | "
            f"{_f(g['cam_mass_in_mask'])} (uniform map: {_f(g['mask_area_fraction'])}) |"
        )
        lines.append(f"| pointing game (CAM peak inside mask) | {_f(g['pointing_game'])} |")
    lines += ["", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for c in class_names:
        pc = m["per_class"][c]
        lines.append(
            f"| {c} | {_f(pc['precision'])} | {_f(pc['recall'])} | {_f(pc['f1'])} | "
            f"{pc['support']} |"
        )
    lines += [
        "",
        f"Confusion matrix (rows actual, columns predicted): `{m['confusion_matrix']}`",
        "",
        "![confusion](confusion_matrix.png) ![roc](roc.png) ![pr](pr.png) "
        "![reliability](reliability.png)",
        "",
    ]
    return "\n".join(lines)
