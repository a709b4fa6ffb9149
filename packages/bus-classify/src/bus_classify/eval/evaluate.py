"""`bus-classify eval`: calibrate on validation, tune the threshold, report on test."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from bus_classify.data.dataset import BusDataset
from bus_classify.data.io import BusClassifyError, atomic_path, write_csv, write_json
from bus_classify.data.split import check_paths, read_csv, relabel
from bus_classify.engine.checkpoint import eval_transform, load_classifier
from bus_classify.engine.infer import predict_logits
from bus_classify.eval.calibration import (
    fit_temperature,
    fit_temperature_bias,
    nll,
    softmax,
    threshold_for_sensitivity,
)
from bus_classify.eval.gradcam import cam_localization
from bus_classify.eval.metrics import expected_calibration_error, positive_score
from bus_classify.eval.report import positive_classes, write_report

log = logging.getLogger(__name__)
CALIBRATIONS = ("temperature", "temperature_bias")
DECISIONS = ("prevalence", "argmax")


def prevalence_threshold(scores: np.ndarray, is_positive: np.ndarray) -> float:
    """Lump-score threshold that calls "no lump" the same share of the given (validation)
    images as are truly "no lump": the ``mean(~is_positive)`` quantile of ``scores``."""
    return float(np.quantile(np.asarray(scores), 1.0 - np.mean(np.asarray(is_positive, bool))))


def evaluate(
    checkpoint: str | Path,
    split_csv: str | Path,
    out: str | Path,
    target_sensitivity: float = 0.95,
    tta: bool = False,
    device: str = "cpu",
    batch_size: int = 64,
    localize: bool = True,
    calibration: str = "temperature_bias",
    decision: str = "prevalence",
) -> dict:
    """Evaluate a checkpoint on the test split with validation-fitted calibration.

    With ``localize`` and BUSI lesion masks beside the test images, the Grad-CAM mass inside
    the mask and the pointing-game hit rate are added under ``details.gradcam_localization``.
    ``calibration`` picks the validation-fitted calibrator behind ``ece_calibrated``, the
    threshold and the calibrated probabilities: ``temperature`` (one scale) or
    ``temperature_bias`` (scale and class bias); the test ECE of both is always in
    ``details.ece_calibrated_by``.

    ``decision`` sets the headline ``accuracy`` and ``f1_macro``: ``prevalence`` (default) calls
    "no lump" the test images whose lump score is below :func:`prevalence_threshold` of the
    validation split (the share of validation images that are "no lump"), ``argmax`` the arg-max
    of the raw probabilities (always under ``details.argmax``).
    """
    if calibration not in CALIBRATIONS:
        raise BusClassifyError(f"unknown calibration {calibration!r}; use one of {CALIBRATIONS}")
    if decision not in DECISIONS:
        raise BusClassifyError(f"unknown decision {decision!r}; use one of {DECISIONS}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = read_csv(split_csv)
    model, hp = load_classifier(checkpoint)
    names = list(hp["class_names"])
    task = hp.get("task") or ("3class" if len(names) == 3 else "binary")
    relabel(rows, task, str(split_csv))
    check_paths([r for r in rows if r["split"] in ("val", "test")], split_csv)
    bad = [r["path"] for r in rows if not 0 <= r["label"] < len(names)]
    if bad:
        raise BusClassifyError(
            f"{checkpoint}: checkpoint has {len(names)} classes but {split_csv} has "
            f"label outside 0..{len(names) - 1} ({bad[0]})"
        )
    tf = eval_transform(hp)
    logits, labels = {}, {}
    for s in ("val", "test"):
        part = [r for r in rows if r["split"] == s]
        if not part:
            raise BusClassifyError(f"{split_csv}: no rows in the {s!r} split")
        logits[s] = predict_logits(model, BusDataset(part, tf), batch_size, tta, device)
        labels[s] = np.array([r["label"] for r in part])
    temp = fit_temperature(logits["val"], labels["val"])
    t_b, bias = fit_temperature_bias(logits["val"], labels["val"])
    scalers = {"temperature": (temp, np.zeros(len(names))), "temperature_bias": (t_b, bias)}
    t_cal, b_cal = scalers[calibration]
    pos = positive_classes(names)
    val_cal = softmax(logits["val"] / t_cal + b_cal)
    thr = threshold_for_sensitivity(
        positive_score(val_cal, pos), np.isin(labels["val"], pos), target_sensitivity
    )
    probs, probs_cal = softmax(logits["test"]), softmax(logits["test"] / t_cal + b_cal)
    decision_thr = None
    if decision == "prevalence":
        decision_thr = prevalence_threshold(
            positive_score(softmax(logits["val"]), pos), np.isin(labels["val"], pos)
        )
    extra = {
        "calibration": calibration,
        "decision_rule": decision,
        "temperature": round(t_cal, 4),
        "bias": [round(float(b), 4) for b in b_cal],
        "ece_calibrated_by": {
            k: expected_calibration_error(softmax(logits["test"] / t + b), labels["test"])
            for k, (t, b) in scalers.items()
        },
        "tta": tta,
        "target_sensitivity": target_sensitivity,
        "nll_val": nll(logits["val"], labels["val"]),
        "nll_val_calibrated": nll(logits["val"] / t_cal + b_cal, labels["val"]),
        "nll_test": nll(logits["test"], labels["test"]),
        "nll_test_calibrated": nll(logits["test"] / t_cal + b_cal, labels["test"]),
        "checkpoint": str(checkpoint),
    }
    test_rows = [r for r in rows if r["split"] == "test"]
    if localize:
        loc = cam_localization(model, hp, test_rows, device)
        if loc is not None:
            extra["gradcam_localization"] = loc
    metrics = write_report(
        out,
        Path(checkpoint).parent.parent.name or "model",
        labels["test"],
        probs,
        names,
        probs_cal,
        thr,
        extra,
        decision_threshold=decision_thr,
    )
    write_json(
        out / "calibration.json",
        {
            "calibration": calibration,
            "temperature": t_cal,
            "bias": [float(b) for b in b_cal],
            "threshold": thr,
            "decision_rule": decision,
            "decision_threshold": decision_thr,
            "class_names": names,
            "positive": pos,
            "target_sensitivity": target_sensitivity,
            "tta": tta,
        },
    )
    with atomic_path(out / "logits.npz") as tmp:  # raw logits, for re-calibration and pooling
        np.savez(
            tmp,
            **{f"{k}_{s}": v[s] for k, v in (("logits", logits), ("labels", labels)) for s in v},
        )
    write_csv(
        out / "test_predictions.csv",
        [
            {
                "file": r["path"],
                "label": r["label"],
                "prob_lump": f"{p:.6f}",
                "prob_lump_calibrated": f"{pc:.6f}",
            }
            for r, p, pc in zip(
                test_rows, positive_score(probs, pos), positive_score(probs_cal, pos)
            )
        ],
        ["file", "label", "prob_lump", "prob_lump_calibrated"],
    )
    log.info(
        "%s T=%.3f bias=%s threshold=%.3f decision %s%s -> %s",
        calibration,
        t_cal,
        b_cal.round(3),
        thr,
        decision,
        "" if decision_thr is None else f" (lump score >= {decision_thr:.3f})",
        out / "metrics.json",
    )
    return metrics
