"""Recall by kind of car (the paper's Fig. 1): GT point count × car volume (× distance)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from groupexp_da.data.io import atomic_path, write_json
from groupexp_da.eval.iou import bev_iou, bev_of

POINT_BINS = (5, 15, 50, 150)  # bins [5, 15), [15, 50), [50, 150), >= 150
DIST_BINS = (15.0, 25.0)  # < 15, 15-25, > 25 m


def matched(gt: np.ndarray, boxes: np.ndarray, scores: np.ndarray, iou_thr: float) -> np.ndarray:
    """Per GT box: found by a box (greedy by score, one box per GT) at BEV IoU >= iou_thr."""
    hit = np.zeros(len(gt), bool)
    if len(gt) == 0 or len(boxes) == 0:
        return hit
    iou = bev_iou(bev_of(boxes[np.argsort(-scores)]), bev_of(gt))
    for row in iou:
        row = np.where(hit, -1.0, row)
        j = int(row.argmax())
        if row[j] >= iou_thr:
            hit[j] = True
    return hit


def recall_table(gt: list[dict], found: list[np.ndarray]) -> dict:
    """``gt`` per frame: ``boxes`` (N, 7) and ``num_points`` (N,); ``found`` per frame: (N,) bool.

    Returns counts and recall per (points bin, volume tertile) overall and per distance bin,
    plus the worst-bin recall and the coefficient of variation over bins with >= 30 GT.
    """
    boxes = np.concatenate([g["boxes"].reshape(-1, 7) for g in gt]) if gt else np.zeros((0, 7))
    npts = np.concatenate([g["num_points"] for g in gt]) if gt else np.zeros(0)
    hit = np.concatenate(found) if found else np.zeros(0, bool)
    keep = npts >= POINT_BINS[0]
    boxes, npts, hit = boxes[keep], npts[keep], hit[keep]
    vol = boxes[:, 3:6].prod(1)
    edges = np.quantile(vol, [1 / 3, 2 / 3]) if len(vol) else np.array([0.0, 0.0])
    pb = np.digitize(npts, POINT_BINS[1:])
    vb = np.digitize(vol, edges)
    db = np.digitize(np.hypot(boxes[:, 0], boxes[:, 1]), DIST_BINS)

    def grid(sel):
        n = np.zeros((len(POINT_BINS), 3), int)
        h = np.zeros_like(n)
        np.add.at(n, (pb[sel], vb[sel]), 1)
        np.add.at(h, (pb[sel], vb[sel]), hit[sel].astype(int))
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(n > 0, h / np.maximum(n, 1), np.nan)
        return n, r

    n, r = grid(np.ones(len(hit), bool))
    big = n >= 30
    flat = {
        "worst_bin_recall": float(np.nanmin(r[big])) if big.any() else None,
        "cv": float(np.nanstd(r[big]) / np.nanmean(r[big])) if big.sum() > 1 else None,
    }
    out = {
        "points_bins": ["5-14", "15-49", "50-149", ">=150"],
        "volume_edges_m3": [round(float(e), 3) for e in edges],
        "gt": int(len(hit)),
        "recall": float(hit.mean()) if len(hit) else None,
        "count": n.tolist(),
        "recall_grid": np.round(r, 4).tolist(),
        **flat,
        "by_distance": {},
    }
    for k, name in enumerate(("<15m", "15-25m", ">25m")):
        nd, rd = grid(db == k)
        out["by_distance"][name] = {"count": nd.tolist(), "recall_grid": np.round(rd, 4).tolist()}
    return out


def heatmap_png(path: str | Path, tables: dict[str, dict]) -> Path:
    """One row per table (detections, pseudo labels): overall + the three distance bins."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(tables)
    fig, axes = plt.subplots(len(names), 4, figsize=(14, 3.2 * len(names)), squeeze=False)
    for row, name in enumerate(names):
        t = tables[name]
        panels = [("all", t)] + list(t["by_distance"].items())
        for col, (title, p) in enumerate(panels):
            ax = axes[row, col]
            r = np.array(p["recall_grid"], float)
            ax.imshow(r, vmin=0, vmax=1, cmap="viridis", origin="lower", aspect="auto")
            for (i, j), v in np.ndenumerate(r):
                c = p["count"][i][j]
                ax.text(
                    j,
                    i,
                    "-" if np.isnan(v) else f"{v:.2f}\n({c})",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="w" if not np.isnan(v) and v < 0.6 else "k",
                )
            ax.set_xticks(range(3), ["small", "mid", "large"])
            ax.set_yticks(range(4), t["points_bins"])
            ax.set_title(f"{name}: {title}", fontsize=9)
            if col == 0:
                ax.set_ylabel("GT points")
            ax.set_xlabel("car volume tertile")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return Path(path)


def write_recall(out_dir: str | Path, tables: dict[str, dict]) -> dict[str, Path]:
    out_dir = Path(out_dir)
    return {
        "json": write_json(out_dir / "recall.json", tables),
        "png": heatmap_png(out_dir / "recall_heatmap.png", tables),
    }
