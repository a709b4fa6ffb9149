"""Rotated IoU vs shapely and KITTI AP on hand-made cases."""

import numpy as np
import pytest
from shapely.geometry import Polygon

from groupexp_da.data.geometry import lidar_box_corners
from groupexp_da.eval.iou import bev_iou, iou_3d
from groupexp_da.eval.kitti_ap import get_thresholds, kitti_ap


def _poly(b7):
    return Polygon(lidar_box_corners(b7[None])[0, :4, :2])


def test_bev_iou_matches_shapely_on_random_boxes():
    rng = np.random.default_rng(0)
    a = np.c_[rng.uniform(-3, 3, (40, 3)), rng.uniform(1, 5, (40, 3)), rng.uniform(-4, 4, 40)]
    b = np.c_[rng.uniform(-3, 3, (30, 3)), rng.uniform(1, 5, (30, 3)), rng.uniform(-4, 4, 30)]
    ours = bev_iou(a[:, [0, 1, 3, 4, 6]], b[:, [0, 1, 3, 4, 6]])
    ref = np.zeros_like(ours)
    for i in range(len(a)):
        pa = _poly(a[i])
        for j in range(len(b)):
            pb = _poly(b[j])
            ref[i, j] = pa.intersection(pb).area / pa.union(pb).area
    assert (ref > 0).mean() > 0.3  # the test exercises real overlaps
    np.testing.assert_allclose(ours, ref, atol=1e-9)


def test_iou_special_cases():
    box = np.array([[0, 0, 0, 4, 2, 1.5, 0.3]])
    assert iou_3d(box, box)[0, 0] == pytest.approx(1.0)
    # rotated by pi: same footprint
    flipped = box.copy()
    flipped[0, 6] += np.pi
    assert bev_iou(box[:, [0, 1, 3, 4, 6]], flipped[:, [0, 1, 3, 4, 6]])[0, 0] == pytest.approx(1)
    # half the height overlapping: BEV 1, 3D = 0.75 / (1.5 + 1.5 - 0.75) = 1/3
    up = box.copy()
    up[0, 2] += 0.75
    assert iou_3d(box, up)[0, 0] == pytest.approx(1 / 3)
    # disjoint
    far = box.copy()
    far[0, 0] += 10
    assert iou_3d(box, far)[0, 0] == 0.0
    # axis-aligned shift by 1 m along x (l=4): inter 3*2=6, union 10
    a = np.array([[0, 0, 0, 4, 2, 1, 0.0]])
    b = np.array([[1, 0, 0, 4, 2, 1, 0.0]])
    assert bev_iou(a[:, [0, 1, 3, 4, 6]], b[:, [0, 1, 3, 4, 6]])[0, 0] == pytest.approx(0.6)


def _frames(n=5, seed=0):
    rng = np.random.default_rng(seed)
    gts = []
    for _ in range(n):
        k = int(rng.integers(1, 5))
        boxes = np.c_[
            rng.uniform(5, 40, (k, 1)),
            rng.uniform(-10, 10, (k, 1)) * 3,
            np.full((k, 1), -1.7),
            np.tile([[3.9, 1.6, 1.5]], (k, 1)),
            rng.uniform(-3, 3, (k, 1)),
        ]
        boxes[:, 1] = np.arange(k) * 6.0 - 9.0  # keep cars apart
        gts.append({"boxes": boxes, "names": np.array(["Car"] * k)})
    return gts


def test_perfect_predictions_give_100():
    # >= 80 GT boxes so that the 41 recall sample points are all reached
    gts = _frames(40)
    assert sum(len(g["boxes"]) for g in gts) >= 80
    dts = [
        {"boxes": g["boxes"].copy(), "scores": np.linspace(0.9, 0.5, len(g["boxes"]))} for g in gts
    ]
    ap = kitti_ap(gts, dts, all_easy=True)
    for k, v in ap.items():
        assert v == pytest.approx(100.0), k


def test_shifted_predictions_give_0():
    gts = _frames()
    dts = []
    for g in gts:
        b = g["boxes"].copy()
        b[:, 0] += 1.5  # BEV IoU (3.9-1.5)/(3.9+1.5) = 0.44 < 0.7
        dts.append({"boxes": b, "scores": np.full(len(b), 0.8)})
    ap = kitti_ap(gts, dts, all_easy=True)
    assert all(v == 0.0 for v in ap.values())


def test_mixed_case_by_hand():
    # One frame, 4 GT cars; predictions with scores 0.9 (TP), 0.8 (FP), 0.7 (TP).
    # Two GTs are never found. With fewer than 40 GTs the devkit adds one
    # threshold per TP (precision index = threshold index, not recall).
    boxes = np.array([[10.0 + 8 * i, 2.0 * i, -1.7, 3.9, 1.6, 1.5, 0.1 * i] for i in range(4)])
    gts = [{"boxes": boxes, "names": np.array(["Car"] * 4)}]
    fp = boxes[0].copy()
    fp[1] += 50
    dts = [{"boxes": np.stack([boxes[0], fp, boxes[1]]), "scores": np.array([0.9, 0.8, 0.7])}]
    ap = kitti_ap(gts, dts, all_easy=True)
    # thresholds: recall 0.25 @0.9 (precision 1), 0.5 @0.7 (precision 2/3).
    # 41-point sampling: get_thresholds keeps both scores -> precision array
    # [1, 2/3, 0, ...] after interpolation; R40 uses points 1..40 -> (2/3)/40.
    assert list(get_thresholds(np.array([0.9, 0.7]), 4)) == [0.9, 0.7]
    assert ap["Car_BEV_R40_easy"] == pytest.approx(100 * (2 / 3) / 40)
    assert ap["Car_BEV_R11_easy"] == pytest.approx(100 * 1.0 / 11)
    assert ap["Car_3D_R40_easy"] == pytest.approx(ap["Car_BEV_R40_easy"])


def test_mixed_case_many_gts_by_hand():
    # 40 GTs, the first 20 found with descending scores plus 10 FPs interleaved
    # (every other detection after the 10th TP is a false positive).
    boxes = np.array(
        [[5.0 + 8 * (i % 8), -20 + 6 * (i // 8), -1.7, 3.9, 1.6, 1.5, 0.0] for i in range(40)]
    )
    gts = [{"boxes": boxes, "names": np.array(["Car"] * 40)}]
    det, sc, is_tp = [], [], []
    s = 1.0
    for i in range(20):
        det.append(boxes[i])
        sc.append(s)
        is_tp.append(True)
        s -= 0.01
        if i >= 10:
            f = boxes[i].copy()
            f[0] += 100
            det.append(f)
            sc.append(s)
            is_tp.append(False)
            s -= 0.01
    dts = [{"boxes": np.array(det), "scores": np.array(sc)}]
    ap = kitti_ap(gts, dts, all_easy=True, kinds=("bev",))
    # Reference computed from the definition: thresholds = TP scores at recall
    # positions k/40 -> every TP (recall step 1/40 = sample step); precision at
    # the k-th TP = k / (k + #FP scored above it); interpolate with a running max.
    tp_scores = [v for v, t in zip(sc, is_tp) if t]
    prec = []
    for thr in tp_scores:
        tp = sum(1 for v, t in zip(sc, is_tp) if t and v >= thr)
        fp = sum(1 for v, t in zip(sc, is_tp) if not t and v >= thr)
        prec.append(tp / (tp + fp))
    prec = np.maximum.accumulate(np.array(prec)[::-1])[::-1]
    full = np.zeros(41)
    full[: len(prec)] = prec
    assert ap["Car_BEV_R40_easy"] == pytest.approx(full[1:].sum() / 40 * 100)
    assert ap["Car_BEV_R11_easy"] == pytest.approx(full[0::4].sum() / 11 * 100)


def test_kitti_difficulties_and_similar_class():
    box = np.array(
        [
            [10, 0, -1.7, 3.9, 1.6, 1.5, 0.0],
            [20, 5, -1.7, 3.9, 1.6, 1.5, 0.0],
            [30, -5, -1.7, 3.9, 1.6, 1.5, 0.0],
        ]
    )
    gt = {
        "boxes": box,
        "names": np.array(["Car", "Car", "Van"]),
        "height": np.array([50.0, 30.0, 60.0]),
        "occluded": np.array([0, 1, 0]),
        "truncated": np.zeros(3),
    }
    gts = [gt] * 100
    # detect everything, including the van (must be neither TP nor FP)
    dts = [{"boxes": box.copy(), "scores": np.array([0.9, 0.8, 0.95])}] * 100
    ap = kitti_ap(gts, dts)
    assert ap["Car_3D_R40_easy"] == pytest.approx(100.0)  # car 1 is too small for easy
    assert ap["Car_3D_R40_moderate"] == pytest.approx(100.0)
    assert ap["Car_BEV_R11_hard"] == pytest.approx(100.0)
    # car 1 never detected: easy unaffected, moderate reaches recall 1/2 only
    dts2 = [{"boxes": box[[0, 2]], "scores": np.array([0.9, 0.95])}] * 100
    ap2 = kitti_ap(gts, dts2)
    assert ap2["Car_3D_R40_easy"] == pytest.approx(100.0)
    assert ap2["Car_3D_R40_moderate"] == pytest.approx(100 * 20 / 40)
    assert ap2["Car_3D_R11_moderate"] == pytest.approx(100 * 6 / 11)
    # a prediction whose 2D box is < 40 px tall is ignored for easy, kept for moderate
    dts3 = [{"boxes": box[[0]], "scores": np.array([0.9]), "height": np.array([30.0])}] * 100
    ap3 = kitti_ap(gts, dts3)
    assert ap3["Car_3D_R40_easy"] == 0.0
    assert ap3["Car_3D_R40_moderate"] == pytest.approx(100 * 20 / 40)
