"""The paper's matching rule: give each 2D panoptic segment the id of the projected 3D instance it overlaps most."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

IGNORE = -1


def match_view(
    seg: np.ndarray,
    segments: Sequence[dict],
    proj: np.ndarray,
    iou_thresh: float = 0.05,
    split_merged: bool = False,
) -> tuple[np.ndarray, dict]:
    """Per-pixel ids for one view: −1 ignore, 0 background, k ≥ 1 the matched projected instance.

    ``seg`` holds segment ids (0 = void), ``segments`` their records (``id``, ``is_background``), ``proj`` the
    projected instance ids (0 = none). A thing segment takes ``argmax_k IoU(segment, P_k)`` when that IoU
    is above ``iou_thresh``, else −1. Several segments may take one id; a segment over two objects goes
    wholly to one, unless ``split_merged`` (then each of its pixels keeps its own matched projection's id).
    """
    out = np.full(seg.shape, IGNORE, dtype=np.int64)
    info = {int(s["id"]): s for s in segments}
    proj_ids = [int(k) for k in np.unique(proj) if k > 0]
    proj_area = {k: int((proj == k).sum()) for k in proj_ids}
    stats = {"segments": 0, "matched": 0, "unmatched": 0, "background": 0, "void_px": 0}
    for sid in np.unique(seg):
        sel = seg == sid
        rec = info.get(int(sid))
        if sid == 0 or rec is None:
            stats["void_px"] += int(sel.sum())
            continue
        stats["segments"] += 1
        if rec.get("is_background", False):
            out[sel] = 0
            stats["background"] += 1
            continue
        area = int(sel.sum())
        ks, inter = np.unique(proj[sel], return_counts=True)
        ious = {int(k): c / (area + proj_area[int(k)] - c) for k, c in zip(ks, inter) if k > 0}
        good = {k: v for k, v in ious.items() if v > iou_thresh}
        if not good:
            stats["unmatched"] += 1
            continue
        best = max(good, key=good.get)
        out[sel] = best
        if split_merged and len(good) > 1:
            for k in good:
                out[sel & (proj == k)] = k
        stats["matched"] += 1
    return out, stats
