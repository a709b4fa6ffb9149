"""ST3D pseudo labels: thresholds, memory ensemble with voting, inference over a dataset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from groupexp_da.eval.iou import bev_iou, bev_of


@dataclass
class PseudoCfg:
    score_thresh: float = 0.6  # >= : positive (label 0)
    neg_thresh: float = 0.2  # [neg, score) : ignored (label -1); below: dropped
    ensemble_iou: float = 0.1  # BEV IoU to match old and new boxes
    ignore_after: int = 2  # unmatched this many rounds in a row -> ignored
    remove_after: int = 3  # ... -> removed


def empty_labels() -> dict:
    return {"boxes": np.zeros((0, 7)), "scores": np.zeros(0), "miss": np.zeros(0, np.int64)}


def memory_ensemble(old: dict, new: dict, cfg: PseudoCfg) -> dict:
    """Merge last round's memory with new detections (ST3D consistency ensemble + voting).

    Matched pairs (BEV IoU > ``ensemble_iou``) keep the higher-scoring box and reset
    the miss counter; unmatched old boxes are kept with ``miss + 1`` and removed
    once ``miss >= remove_after``; unmatched new boxes are added with ``miss = 0``.
    """
    nb = np.asarray(new["boxes"], np.float64).reshape(-1, 7)
    ns = np.asarray(new["scores"], np.float64).reshape(-1)
    ob = np.asarray(old["boxes"], np.float64).reshape(-1, 7)
    os_ = np.asarray(old["scores"], np.float64).reshape(-1)
    om = np.asarray(old.get("miss", np.zeros(len(ob))), np.int64).reshape(-1)
    if len(ob) == 0:
        return {"boxes": nb, "scores": ns, "miss": np.zeros(len(nb), np.int64)}
    if len(nb) == 0:
        miss = om + 1
        keep = miss < cfg.remove_after
        return {"boxes": ob[keep], "scores": os_[keep], "miss": miss[keep]}
    iou = bev_iou(bev_of(ob), bev_of(nb))  # (old, new)
    best = iou.argmax(1)
    best_iou = iou[np.arange(len(ob)), best]
    boxes, scores, miss = [], [], []
    used_new = np.zeros(len(nb), bool)
    for j in range(len(ob)):
        i = best[j]
        if best_iou[j] > cfg.ensemble_iou and not used_new[i]:
            used_new[i] = True
            take_new = ns[i] >= os_[j]
            boxes.append(nb[i] if take_new else ob[j])
            scores.append(max(ns[i], os_[j]))
            miss.append(0)
        elif om[j] + 1 < cfg.remove_after:
            boxes.append(ob[j])
            scores.append(os_[j])
            miss.append(om[j] + 1)
    for i in np.flatnonzero(~used_new):
        boxes.append(nb[i])
        scores.append(ns[i])
        miss.append(0)
    return {"boxes": np.asarray(boxes).reshape(-1, 7), "scores": np.asarray(scores),
            "miss": np.asarray(miss, np.int64)}


def assign_labels(mem: dict, cfg: PseudoCfg) -> dict:
    """Positives (0), ignore band (-1), drop the rest. Boxes missed for ``ignore_after``
    rounds are ignored whatever their score."""
    s = mem["scores"]
    keep = s >= cfg.neg_thresh
    labels = np.where(s >= cfg.score_thresh, 0, -1)
    labels = np.where(mem["miss"] >= cfg.ignore_after, -1, labels)
    return {"boxes": mem["boxes"][keep], "scores": s[keep], "miss": mem["miss"][keep],
            "labels": labels[keep].astype(np.int64)}


def to_instances(lab: dict) -> list[dict]:
    return [
        {"bbox_3d": [float(v) for v in b], "bbox_label_3d": int(lab_), "bbox_label": int(lab_),
         "score": float(s), "miss": int(m)}
        for b, s, m, lab_ in zip(lab["boxes"], lab["scores"], lab["miss"], lab["labels"])
    ]


def from_instances(instances: list[dict]) -> dict:
    if not instances:
        return empty_labels()
    return {
        "boxes": np.array([i["bbox_3d"] for i in instances], np.float64).reshape(-1, 7),
        "scores": np.array([i.get("score", 1.0) for i in instances], np.float64),
        "miss": np.array([i.get("miss", 0) for i in instances], np.int64),
    }
