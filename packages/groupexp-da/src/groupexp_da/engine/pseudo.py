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
    group_score_thresh: float = 0.3  # >= : positive for a group-branch box (GroupEXP)
    replace: str = "swap"  # group positives demote as many low baseline positives ('add': none)

    def __post_init__(self) -> None:
        if self.replace not in ("swap", "add"):
            raise ValueError(f"st3d.replace must be 'swap' or 'add', got {self.replace!r}")


def empty_labels() -> dict:
    return {
        "boxes": np.zeros((0, 7)),
        "scores": np.zeros(0),
        "miss": np.zeros(0, np.int64),
        "group": np.zeros(0, np.int64),
    }


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
    og = np.asarray(old.get("group", np.zeros(len(ob))), np.int64).reshape(-1)
    ng = np.asarray(new.get("group", np.zeros(len(nb))), np.int64).reshape(-1)
    if len(ob) == 0:
        return {"boxes": nb, "scores": ns, "miss": np.zeros(len(nb), np.int64), "group": ng}
    if len(nb) == 0:
        miss = om + 1
        keep = miss < cfg.remove_after
        return {"boxes": ob[keep], "scores": os_[keep], "miss": miss[keep], "group": og[keep]}
    iou = bev_iou(bev_of(ob), bev_of(nb))  # (old, new)
    best = iou.argmax(1)
    best_iou = iou[np.arange(len(ob)), best]
    boxes, scores, miss, group = [], [], [], []
    used_new = np.zeros(len(nb), bool)
    for j in range(len(ob)):
        i = best[j]
        if best_iou[j] > cfg.ensemble_iou and not used_new[i]:
            used_new[i] = True
            take_new = ns[i] >= os_[j]
            boxes.append(nb[i] if take_new else ob[j])
            group.append(ng[i] if take_new else og[j])
            scores.append(max(ns[i], os_[j]))
            miss.append(0)
        elif om[j] + 1 < cfg.remove_after:
            boxes.append(ob[j])
            group.append(og[j])
            scores.append(os_[j])
            miss.append(om[j] + 1)
    for i in np.flatnonzero(~used_new):
        boxes.append(nb[i])
        group.append(ng[i])
        scores.append(ns[i])
        miss.append(0)
    return {
        "boxes": np.asarray(boxes).reshape(-1, 7),
        "scores": np.asarray(scores),
        "miss": np.asarray(miss, np.int64),
        "group": np.asarray(group, np.int64),
    }


def assign_labels(mem: dict, cfg: PseudoCfg) -> dict:
    """Positives (0), ignore band (-1), drop the rest. Boxes missed for ``ignore_after``
    rounds are ignored whatever their score."""
    s = mem["scores"]
    keep = s >= cfg.neg_thresh
    labels = np.where(s >= cfg.score_thresh, 0, -1)
    labels = np.where(mem["miss"] >= cfg.ignore_after, -1, labels)
    group = np.asarray(mem.get("group", np.zeros(len(s))), np.int64)
    return {
        "boxes": mem["boxes"][keep],
        "scores": s[keep],
        "miss": mem["miss"][keep],
        "labels": labels[keep].astype(np.int64),
        "group": group[keep],
    }


def assign_labels_grouped(mem: dict, cfg: PseudoCfg) -> dict:
    """GroupEXP's rule (the authors' code): baseline boxes (group 0) are positive at
    ``score_thresh``, group-branch boxes (group >= 1) at ``group_score_thresh``; with
    ``replace='swap'`` the m new group positives turn the m lowest-scoring baseline positives
    into ignore (all of them if m is larger). Below ``neg_thresh``: dropped; else ignore."""
    s = np.asarray(mem["scores"], np.float64)
    grp = np.asarray(mem.get("group", np.zeros(len(s))), np.int64)
    base = grp == 0
    pos = np.where(base, s >= cfg.score_thresh, s >= cfg.group_score_thresh)
    if cfg.replace == "swap":
        m = int((pos & ~base).sum())
        base_pos = np.flatnonzero(pos & base)
        demote = base_pos[np.argsort(s[base_pos], kind="stable")][:m]
        pos[demote] = False
    labels = np.where(pos, 0, -1)
    labels = np.where(mem["miss"] >= cfg.ignore_after, -1, labels)
    keep = s >= cfg.neg_thresh
    return {
        "boxes": mem["boxes"][keep],
        "scores": s[keep],
        "miss": mem["miss"][keep],
        "labels": labels[keep].astype(np.int64),
        "group": grp[keep],
    }


def label_quality(gt: list[np.ndarray], labels: list[dict], iou_thr: float = 0.7) -> dict:
    """Precision / recall of the positive pseudo labels against GT boxes (BEV IoU, greedy by
    score), summed over frames."""
    tp = n_pos = n_gt = 0
    for g, lab in zip(gt, labels):
        g = np.asarray(g, np.float64).reshape(-1, 7)
        sel = lab["labels"] == 0
        b, sc = lab["boxes"][sel], lab["scores"][sel]
        n_pos += len(b)
        n_gt += len(g)
        if len(b) == 0 or len(g) == 0:
            continue
        iou = bev_iou(bev_of(b[np.argsort(-sc)]), bev_of(g))
        used = np.zeros(len(g), bool)
        for row in iou:
            row = np.where(used, -1.0, row)
            j = int(row.argmax())
            if row[j] >= iou_thr:
                used[j] = True
                tp += 1
    return {
        "tp": tp,
        "positives": n_pos,
        "gt": n_gt,
        "precision": round(tp / n_pos, 4) if n_pos else None,
        "recall": round(tp / n_gt, 4) if n_gt else None,
    }


def to_instances(lab: dict) -> list[dict]:
    group = lab.get("group", np.zeros(len(lab["scores"]), np.int64))
    return [
        {
            "bbox_3d": [float(v) for v in b],
            "bbox_label_3d": int(lab_),
            "bbox_label": int(lab_),
            "score": float(s),
            "miss": int(m),
            "group": int(g),
        }
        for b, s, m, lab_, g in zip(lab["boxes"], lab["scores"], lab["miss"], lab["labels"], group)
    ]


def from_instances(instances: list[dict]) -> dict:
    if not instances:
        return empty_labels()
    return {
        "boxes": np.array([i["bbox_3d"] for i in instances], np.float64).reshape(-1, 7),
        "scores": np.array([i.get("score", 1.0) for i in instances], np.float64),
        "miss": np.array([i.get("miss", 0) for i in instances], np.int64),
        "group": np.array([i.get("group", 0) for i in instances], np.int64),
    }
