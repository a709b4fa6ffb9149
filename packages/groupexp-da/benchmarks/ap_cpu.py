"""Time the CPU KITTI AP on a KITTI-val-sized set (3,769 frames x ~20 boxes).

Also times the polygon-clipping BEV IoU against shapely on the same box pairs.
Prints one JSON object (last line). ``--device`` is accepted for the harness; the
metric always runs on the CPU.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from groupexp_da.eval.iou import bev_iou
from groupexp_da.eval.kitti_ap import kitti_ap


def make_frames(n_frames: int, boxes_per_frame: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    gts, dts = [], []
    for _ in range(n_frames):
        k = int(rng.integers(boxes_per_frame // 2, boxes_per_frame * 3 // 2 + 1))
        xy = np.c_[rng.uniform(0, 70, k), rng.uniform(-40, 40, k)]
        dims = np.abs(rng.normal([3.9, 1.6, 1.5], [0.3, 0.1, 0.1], (k, 3)))
        gt = np.c_[xy, np.full(k, -1.7), dims, rng.uniform(-np.pi, np.pi, k)]
        names = rng.choice(["Car", "Car", "Car", "Van", "Pedestrian"], k)
        det = gt + rng.normal(0, [0.2, 0.2, 0.1, 0.1, 0.05, 0.05, 0.05], gt.shape)
        det = det[rng.random(k) < 0.85]
        fp = np.c_[
            rng.uniform(0, 70, (5, 1)),
            rng.uniform(-40, 40, (5, 1)),
            np.full((5, 1), -1.7),
            np.tile([3.9, 1.6, 1.5], (5, 1)),
            rng.uniform(-3, 3, (5, 1)),
        ]
        det = np.vstack([det, fp])
        gts.append(
            {
                "boxes": gt,
                "names": names,
                "height": rng.uniform(15, 200, k),
                "occluded": rng.integers(0, 3, k),
                "truncated": rng.uniform(0, 0.5, k),
            }
        )
        dts.append(
            {
                "boxes": det,
                "scores": rng.uniform(0, 1, len(det)),
                "height": rng.uniform(15, 200, len(det)),
            }
        )
    return gts, dts


def shapely_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from shapely.geometry import Polygon

    from groupexp_da.data.geometry import lidar_box_corners

    def polys(x):
        full = np.c_[x[:, :2], np.zeros(len(x)), x[:, 2:4], np.ones(len(x)), x[:, 4]]
        return [Polygon(c[:4, :2]) for c in lidar_box_corners(full)]

    pa, pb = polys(a), polys(b)
    out = np.zeros((len(a), len(b)))
    for i, p in enumerate(pa):
        for j, q in enumerate(pb):
            if p.intersects(q):
                out[i, j] = p.intersection(q).area / p.union(q).area
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--frames", type=int, default=3769)
    ap.add_argument("--boxes", type=int, default=20)
    a = ap.parse_args(argv)
    n = 200 if a.quick else a.frames
    gts, dts = make_frames(n, a.boxes)
    kitti_ap(gts[:5], dts[:5])  # numba compile / cache load, not timed
    t0 = time.perf_counter()
    res = kitti_ap(gts, dts)
    t_ap = time.perf_counter() - t0
    # IoU: polygon clipping vs shapely on the same pairs (subset of frames)
    m = 20 if a.quick else 200
    pairs = 0
    t0 = time.perf_counter()
    ours = [
        bev_iou(d["boxes"][:, [0, 1, 3, 4, 6]], g["boxes"][:, [0, 1, 3, 4, 6]])
        for g, d in zip(gts[:m], dts[:m])
    ]
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = [
        shapely_iou(d["boxes"][:, [0, 1, 3, 4, 6]], g["boxes"][:, [0, 1, 3, 4, 6]])
        for g, d in zip(gts[:m], dts[:m])
    ]
    t_shp = time.perf_counter() - t0
    pairs = sum(o.size for o in ours)
    err = max(float(np.abs(o - r).max()) for o, r in zip(ours, ref) if o.size)
    out = {
        "benchmark": "ap_cpu",
        "package": "groupexp-da",
        "device": "cpu",
        "results": {
            "frames": n,
            "gt_boxes": int(sum(len(g["boxes"]) for g in gts)),
            "pred_boxes": int(sum(len(d["boxes"]) for d in dts)),
            "ap_seconds": round(t_ap, 3),
            "goal_seconds": 30.0,
            "ratio_to_goal": round(t_ap / 30.0 * (3769 / n), 4),
            "iou_pairs": pairs,
            "iou_ours_s": round(t_ours, 4),
            "iou_shapely_s": round(t_shp, 4),
            "iou_speedup_vs_shapely": round(t_shp / max(t_ours, 1e-9), 1),
            "iou_max_abs_diff_vs_shapely": err,
            "Car_3D_R40_moderate": round(res["Car_3D_R40_moderate"], 3),
        },
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
