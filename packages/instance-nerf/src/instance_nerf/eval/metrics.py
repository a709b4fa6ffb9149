"""Semantic mIoU, panoptic quality and multi-view consistency on integer id maps (numpy)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

IGNORE = -1


def to_semantic(ids: np.ndarray, id_to_class: dict[int, int]) -> np.ndarray:
    """Map instance ids to class ids (unknown ids -> class 0, ignored stays -1)."""
    lut = np.zeros(max(max(id_to_class, default=0), int(ids.max(initial=0))) + 1, dtype=np.int64)
    for i, c in id_to_class.items():
        lut[i] = c
    return np.where(ids < 0, IGNORE, lut[np.clip(ids, 0, None)])


def mean_iou(
    gts: Sequence[np.ndarray], preds: Sequence[np.ndarray]
) -> tuple[float, dict[int, float]]:
    """mIoU over classes present in GT or prediction, accumulated over all views; -1 pixels skipped."""
    inter: Counter = Counter()
    union: Counter = Counter()
    for gt, pr in zip(gts, preds):
        valid = gt != IGNORE
        g, p = gt[valid], pr[valid]
        for c in np.union1d(np.unique(g), np.unique(p)):
            gi, pi = g == c, p == c
            inter[int(c)] += int((gi & pi).sum())
            union[int(c)] += int((gi | pi).sum())
    per = {c: inter[c] / union[c] for c in sorted(union) if union[c] > 0}
    return (float(np.mean(list(per.values()))) if per else 0.0), per


def panoptic_quality(
    gt_ids: Sequence[np.ndarray],
    pred_ids: Sequence[np.ndarray],
    gt_classes: dict[int, int],
    pred_classes: dict[int, int] | Sequence[dict[int, int]],
    background_classes: tuple[int, ...] = (0,),
) -> tuple[float, dict[int, float]]:
    """PQ = sum IoU(TP) / (TP + FP/2 + FN/2), per thing class, averaged over classes.

    Segments are the pixels of one id in one view (id 0 and background classes excluded). A GT and a
    predicted segment of the same class match when IoU > 0.5. Pixels whose GT is -1 are ignored.
    ``pred_classes`` is one map for all views, or one per view (2D masks whose ids mean nothing across views).
    """
    stats: dict[int, list[float]] = {}
    per_view = not isinstance(pred_classes, dict)
    all_pred_classes = pred_classes
    for v, (gt, pr) in enumerate(zip(gt_ids, pred_ids)):
        pred_classes = all_pred_classes[v] if per_view else all_pred_classes
        valid = gt != IGNORE
        segs_g = {int(i): (gt == i) & valid for i in np.unique(gt[valid]) if i > 0}
        segs_p = {int(i): (pr == i) & valid for i in np.unique(pr[valid]) if i > 0}
        segs_g = {i: m for i, m in segs_g.items() if gt_classes.get(i, 0) not in background_classes}
        segs_p = {
            i: m for i, m in segs_p.items() if pred_classes.get(i, 0) not in background_classes
        }
        matched_g, matched_p = set(), set()
        for gi, gm in segs_g.items():
            c = gt_classes.get(gi, 0)
            s = stats.setdefault(c, [0.0, 0, 0, 0])
            for pi, pm in segs_p.items():
                if pi in matched_p or pred_classes.get(pi, 0) != c:
                    continue
                iou = (gm & pm).sum() / max((gm | pm).sum(), 1)
                if iou > 0.5:
                    s[0] += float(iou)
                    s[1] += 1
                    matched_g.add(gi)
                    matched_p.add(pi)
                    break
        for gi in segs_g:
            if gi not in matched_g:
                stats.setdefault(gt_classes.get(gi, 0), [0.0, 0, 0, 0])[3] += 1
        for pi in segs_p:
            if pi not in matched_p:
                stats.setdefault(pred_classes.get(pi, 0), [0.0, 0, 0, 0])[2] += 1
    per = {}
    for c, (iou_sum, tp, fp, fn) in sorted(stats.items()):
        denom = tp + 0.5 * fp + 0.5 * fn
        if denom > 0:
            per[c] = iou_sum / denom
    return (float(np.mean(list(per.values()))) if per else 0.0), per


def pq_multiview(
    gt_ids: Sequence[np.ndarray],
    pred_ids: Sequence[np.ndarray],
    gt_classes: dict[int, int],
    pred_classes: dict[int, int],
    background_classes: tuple[int, ...] = (0,),
) -> float:
    """PQ where each id's pixels over all views form one segment (rewards ids that agree across views)."""
    gt = np.concatenate([g.reshape(-1) for g in gt_ids])[None]
    pr = np.concatenate([p.reshape(-1) for p in pred_ids])[None]
    return panoptic_quality([gt], [pr], gt_classes, pred_classes, background_classes)[0]


def majority_classes(
    pred_ids: Sequence[np.ndarray], per_view_classes: Sequence[dict[int, int]]
) -> dict[int, int]:
    """One class per id from per-view class maps: the class covering the most pixels of that id."""
    votes: dict[int, Counter] = {}
    for pr, classes in zip(pred_ids, per_view_classes):
        ids, counts = np.unique(pr[pr > 0], return_counts=True)
        for i, c in zip(ids, counts):
            votes.setdefault(int(i), Counter())[classes.get(int(i), 0)] += int(c)
    return {0: 0} | {i: v.most_common(1)[0][0] for i, v in votes.items()}


def consistency(
    gt_ids: Sequence[np.ndarray], pred_ids: Sequence[np.ndarray], min_pixels: int = 4
) -> float:
    """Fraction of GT objects whose majority predicted id is the same (and not 0) in every view.

    Only views where the object covers at least ``min_pixels`` pixels count.
    """
    majority: dict[int, set[int]] = {}
    for gt, pr in zip(gt_ids, pred_ids):
        for g in np.unique(gt):
            if g <= 0:
                continue
            sel = gt == g
            if sel.sum() < min_pixels:
                continue
            vals, counts = np.unique(pr[sel], return_counts=True)
            majority.setdefault(int(g), set()).add(int(vals[counts.argmax()]))
    if not majority:
        return 0.0
    ok = sum(1 for s in majority.values() if len(s) == 1 and 0 not in s)
    return ok / len(majority)
