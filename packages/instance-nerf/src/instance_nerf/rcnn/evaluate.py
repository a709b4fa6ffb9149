"""3D box and mask average precision (VOC all-point) at IoU 0.25 and 0.5."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from instance_nerf.rcnn.ops import box_iou_3d


def average_precision(tp: np.ndarray, scores: np.ndarray, num_gt: int) -> float:
    """VOC all-point AP of detections flagged true/false positive, ``num_gt`` ground-truth objects."""
    if num_gt == 0:
        return float("nan")
    if len(tp) == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    tp = tp[order].astype(np.float64)
    ctp, cfp = np.cumsum(tp), np.cumsum(1 - tp)
    rec = ctp / num_gt
    prec = ctp / np.maximum(ctp + cfp, 1e-12)
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[0.0], prec, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    idx = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]).sum())


def _mask_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a.reshape(len(a), -1).float(), b.reshape(len(b), -1).float()
    inter = a @ b.T
    return inter / (a.sum(1)[:, None] + b.sum(1)[None] - inter).clamp_min(1e-9)


def detection_ap(
    preds: Sequence[dict],
    gts: Sequence[dict],
    num_classes: int,
    thresholds: Sequence[float] = (0.25, 0.5),
) -> dict[str, float]:
    """``box_ap25``, ``box_ap50``, ``mask_ap25``, ``mask_ap50``: mean over classes 1..L−1 that have GT.

    ``preds``: per scene {boxes, labels, scores, masks}; ``gts``: {boxes, labels, masks}. Greedy matching
    by falling score; each GT matches once.
    """
    out = {}
    for kind in ("box", "mask"):
        for thr in thresholds:
            aps = []
            for c in range(1, num_classes):
                tps, scores, n_gt = [], [], 0
                for p, g in zip(preds, gts):
                    ps, gs = p["labels"] == c, g["labels"] == c
                    n_gt += int(gs.sum())
                    if not ps.any():
                        continue
                    sc = p["scores"][ps]
                    order = sc.argsort(descending=True)
                    if gs.any():
                        iou = (
                            box_iou_3d(p["boxes"][ps], g["boxes"][gs])
                            if kind == "box"
                            else _mask_iou(p["masks"][ps], g["masks"][gs])
                        )[order]
                    used = torch.zeros(int(gs.sum()), dtype=torch.bool)
                    for r in range(len(order)):
                        hit = False
                        if gs.any():
                            cand = iou[r].clone()
                            cand[used] = -1
                            j = int(cand.argmax())
                            if float(cand[j]) >= thr:
                                used[j] = hit = True
                        tps.append(hit)
                    scores += sc[order].tolist()
                ap = average_precision(np.array(tps, bool), np.array(scores), n_gt)
                if not np.isnan(ap):
                    aps.append(ap)
            out[f"{kind}_ap{int(round(thr * 100))}"] = float(np.mean(aps)) if aps else 0.0
    return out
