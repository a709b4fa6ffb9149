"""KITTI average precision (R11 / R40) for BEV and 3D boxes, on the CPU.

The protocol follows the official KITTI devkit as used by mmdet3d/OpenPCDet:
per-difficulty ignore flags, greedy score-ordered matching with IoU strictly
above the threshold, 41 recall-sampled score thresholds, interpolated
precision, R11 = mean over every 4th sample, R40 = mean over samples 1..40.

Frames are plain dicts so the function runs without mmdet3d:

* GT: ``boxes`` (N, 7) LiDAR boxes, ``names`` (N,), optional ``height`` (2D box
  height in pixels), ``occluded``, ``truncated`` (N,) for KITTI difficulties.
* Predictions: ``boxes`` (M, 7), ``scores`` (M,), optional ``names`` (default
  all ``current_class``) and ``height`` (2D box height; default: never ignored).
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from groupexp_da.eval.iou import bev_iou, bev_of, iou_3d

MIN_HEIGHT = (40.0, 25.0, 25.0)
MAX_OCCLUSION = (0, 1, 2)
MAX_TRUNCATION = (0.15, 0.3, 0.5)
DIFFICULTIES = ("easy", "moderate", "hard")
SIMILAR = {"car": "van", "pedestrian": "person_sitting"}
N_SAMPLE_PTS = 41


@numba.njit(cache=True)
def _match(ov, scores, ign_gt, ign_dt, min_ov, thresh, compute_fp, tp_scores):
    """Match one frame. ``ov`` is (num_dt, num_gt). Returns tp, fp, fn, n_tp_scores."""
    n_dt, n_gt = ov.shape
    assigned = np.zeros(n_dt, dtype=np.bool_)
    below = np.zeros(n_dt, dtype=np.bool_)
    if compute_fp:
        for j in range(n_dt):
            below[j] = scores[j] < thresh
    no_det = -10000000.0
    tp = 0
    fn = 0
    fp = 0
    k = 0
    for i in range(n_gt):
        if ign_gt[i] == -1:
            continue
        det = -1
        valid = no_det
        max_ov = 0.0
        assigned_ignored = False
        for j in range(n_dt):
            if ign_dt[j] == -1 or assigned[j] or below[j]:
                continue
            o = ov[j, i]
            if not compute_fp and o > min_ov and scores[j] > valid:
                det = j
                valid = scores[j]
            elif compute_fp and o > min_ov and (o > max_ov or assigned_ignored) and ign_dt[j] == 0:
                max_ov = o
                det = j
                valid = 1.0
                assigned_ignored = False
            elif compute_fp and o > min_ov and valid == no_det and ign_dt[j] == 1:
                det = j
                valid = 1.0
                assigned_ignored = True
        if valid == no_det and ign_gt[i] == 0:
            fn += 1
        elif valid != no_det and (ign_gt[i] == 1 or ign_dt[det] == 1):
            assigned[det] = True
        elif valid != no_det:
            tp += 1
            tp_scores[k] = scores[det]
            k += 1
            assigned[det] = True
    if compute_fp:
        for j in range(n_dt):
            if not (assigned[j] or ign_dt[j] == -1 or ign_dt[j] == 1 or below[j]):
                fp += 1
    return tp, fp, fn, k


@numba.njit(cache=True)
def _collect_tp_scores(ovs, ov_off, gt_off, dt_off, scores, ign_gt, ign_dt, min_ov):
    out = np.empty(gt_off[-1] + 1)
    buf = np.empty(max(1, gt_off[-1]))
    n = 0
    for f in range(gt_off.shape[0] - 1):
        ng = gt_off[f + 1] - gt_off[f]
        nd = dt_off[f + 1] - dt_off[f]
        ov = ovs[ov_off[f] : ov_off[f] + nd * ng].reshape(nd, ng)
        _, _, _, k = _match(
            ov,
            scores[dt_off[f] : dt_off[f + 1]],
            ign_gt[gt_off[f] : gt_off[f + 1]],
            ign_dt[dt_off[f] : dt_off[f + 1]],
            min_ov,
            0.0,
            False,
            buf,
        )
        out[n : n + k] = buf[:k]
        n += k
    return out[:n]


@numba.njit(cache=True)
def _accumulate(ovs, ov_off, gt_off, dt_off, scores, ign_gt, ign_dt, min_ov, thresholds):
    pr = np.zeros((thresholds.shape[0], 3))
    buf = np.empty(max(1, gt_off[-1]))
    for f in range(gt_off.shape[0] - 1):
        ng = gt_off[f + 1] - gt_off[f]
        nd = dt_off[f + 1] - dt_off[f]
        ov = ovs[ov_off[f] : ov_off[f] + nd * ng].reshape(nd, ng)
        for t in range(thresholds.shape[0]):
            tp, fp, fn, _ = _match(
                ov,
                scores[dt_off[f] : dt_off[f + 1]],
                ign_gt[gt_off[f] : gt_off[f + 1]],
                ign_dt[dt_off[f] : dt_off[f + 1]],
                min_ov,
                thresholds[t],
                True,
                buf,
            )
            pr[t, 0] += tp
            pr[t, 1] += fp
            pr[t, 2] += fn
    return pr


def get_thresholds(scores: np.ndarray, num_gt: int, num_pts: int = N_SAMPLE_PTS) -> np.ndarray:
    """Score thresholds at (approximately) evenly spaced recall positions."""
    scores = np.sort(scores)[::-1]
    cur = 0.0
    out = []
    for i, s in enumerate(scores):
        l_rec = (i + 1) / num_gt
        r_rec = (i + 2) / num_gt if i < len(scores) - 1 else l_rec
        if (r_rec - cur) < (cur - l_rec) and i < len(scores) - 1:
            continue
        out.append(s)
        cur += 1.0 / (num_pts - 1.0)
    return np.asarray(out, dtype=np.float64)


def _ignore_flags(gt: dict, dt: dict, cls: str, diff: int, all_easy: bool):
    cls = cls.lower()
    similar = SIMILAR.get(cls)
    names = np.char.lower(np.asarray(gt["names"], dtype=str).reshape(-1))
    n = names.shape[0]
    ign_gt = np.full(n, -1, dtype=np.int64)
    valid = names == cls
    if similar is not None:
        ign_gt[names == similar] = 1
    if all_easy:
        hard = np.zeros(n, dtype=bool)
    else:
        h = np.asarray(gt.get("height", np.full(n, np.inf)), dtype=np.float64).reshape(-1)
        occ = np.asarray(gt.get("occluded", np.zeros(n)), dtype=np.float64).reshape(-1)
        trunc = np.asarray(gt.get("truncated", np.zeros(n)), dtype=np.float64).reshape(-1)
        hard = (
            (occ > MAX_OCCLUSION[diff]) | (trunc > MAX_TRUNCATION[diff]) | (h <= MIN_HEIGHT[diff])
        )
    ign_gt[valid & hard] = 1
    ign_gt[valid & ~hard] = 0
    m = len(dt["scores"])
    dnames = dt.get("names")
    dvalid = (
        np.ones(m, dtype=bool)
        if dnames is None
        else np.char.lower(np.asarray(dnames, dtype=str).reshape(-1)) == cls
    )
    ign_dt = np.where(dvalid, 0, -1).astype(np.int64)
    if not all_easy and dt.get("height") is not None:
        dh = np.abs(np.asarray(dt["height"], dtype=np.float64).reshape(-1))
        ign_dt[dh < MIN_HEIGHT[diff]] = 1
    return ign_gt, ign_dt, int((ign_gt == 0).sum())


def _overlaps(gts: Sequence[dict], dts: Sequence[dict], kind: str) -> list[np.ndarray]:
    fn = bev_iou if kind == "bev" else iou_3d
    out = []
    for gt, dt in zip(gts, dts, strict=True):
        g = np.asarray(gt["boxes"], dtype=np.float64).reshape(-1, 7)
        d = np.asarray(dt["boxes"], dtype=np.float64).reshape(-1, 7)
        out.append(fn(bev_of(d), bev_of(g)) if kind == "bev" else fn(d, g))
    return out


def _ap_one(ovs, gts, dts, cls, diff, all_easy, min_ov) -> np.ndarray:
    """Interpolated precision at the 41 sampled thresholds."""
    flags = [_ignore_flags(g, d, cls, diff, all_easy) for g, d in zip(gts, dts)]
    num_valid = sum(f[2] for f in flags)
    prec = np.zeros(N_SAMPLE_PTS)
    if num_valid == 0:
        return prec
    gt_off = np.zeros(len(gts) + 1, dtype=np.int64)
    dt_off = np.zeros(len(gts) + 1, dtype=np.int64)
    ov_off = np.zeros(len(gts) + 1, dtype=np.int64)
    for f, (o, g, d) in enumerate(zip(ovs, flags, dts)):
        gt_off[f + 1] = gt_off[f] + len(g[0])
        dt_off[f + 1] = dt_off[f] + len(d["scores"])
        ov_off[f + 1] = ov_off[f] + o.size
    ovc = np.concatenate([o.ravel() for o in ovs]) if ovs else np.zeros(0)
    scores = np.concatenate([np.asarray(d["scores"], np.float64).reshape(-1) for d in dts])
    ign_gt = np.concatenate([f[0] for f in flags])
    ign_dt = np.concatenate([f[1] for f in flags])
    args = (ovc, ov_off, gt_off, dt_off, scores, ign_gt, ign_dt, float(min_ov))
    tp_scores = _collect_tp_scores(*args)
    thr = get_thresholds(tp_scores, num_valid)
    if thr.size == 0:
        return prec
    pr = _accumulate(*args, thr)
    p = pr[:, 0] / np.maximum(pr[:, 0] + pr[:, 1], 1e-12)
    p = np.where(pr[:, 0] + pr[:, 1] > 0, p, 0.0)
    prec[: len(thr)] = np.maximum.accumulate(p[::-1])[::-1]
    return prec


def kitti_ap(
    gts: Sequence[dict],
    dts: Sequence[dict],
    current_class: str = "Car",
    min_overlap: float = 0.7,
    all_easy: bool = False,
    kinds: Sequence[str] = ("bev", "3d"),
) -> dict[str, float]:
    """KITTI AP in percent. Keys like ``Car_3D_R40_moderate`` / ``Car_BEV_R11_easy``.

    With ``all_easy`` every GT of the class counts as easy (ST3D's protocol for
    nuScenes/Waymo targets) and only the ``easy`` keys are returned.
    """
    if len(gts) != len(dts):
        raise ValueError(f"{len(gts)} GT frames but {len(dts)} prediction frames")
    diffs = (0,) if all_easy else (0, 1, 2)
    out: dict[str, float] = {}
    for kind in kinds:
        ovs = _overlaps(gts, dts, kind)
        tag = "BEV" if kind == "bev" else "3D"
        for diff in diffs:
            prec = _ap_one(ovs, gts, dts, current_class, diff, all_easy, min_overlap)
            name = DIFFICULTIES[diff]
            out[f"{current_class}_{tag}_R11_{name}"] = float(prec[0::4].sum() / 11 * 100)
            out[f"{current_class}_{tag}_R40_{name}"] = float(prec[1:].sum() / 40 * 100)
    return out
