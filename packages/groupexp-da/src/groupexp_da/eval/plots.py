"""Bird's-eye-view plots: points, GT, predictions and pseudo labels."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from groupexp_da.data.geometry import lidar_box_corners
from groupexp_da.data.io import GroupExpError, atomic_path, load_infos, read_points
from groupexp_da.eval.gt import frame_id, gt_frame


def _draw(ax, boxes: np.ndarray, color: str, label: str, ls: str = "-") -> None:
    if boxes is None or len(boxes) == 0:
        return
    corners = lidar_box_corners(np.asarray(boxes).reshape(-1, 7))[:, :4, :2]
    for k, c in enumerate(corners):
        ring = np.vstack([c, c[:1]])
        ax.plot(ring[:, 0], ring[:, 1], color=color, ls=ls, lw=1.2, label=label if k == 0 else None)
        # heading tick: centre -> front edge midpoint
        front = 0.5 * (c[0] + c[1])
        ctr = c.mean(0)
        ax.plot([ctr[0], front[0]], [ctr[1], front[1]], color=color, lw=1.0)


def bev_plot(
    out: str | Path,
    points: np.ndarray,
    gt: np.ndarray | None = None,
    pred: np.ndarray | None = None,
    pred_scores: np.ndarray | None = None,
    pseudo: np.ndarray | None = None,
    pseudo_labels: np.ndarray | None = None,
    xlim: tuple[float, float] | None = None,
    ylim: tuple[float, float] | None = None,
    title: str = "",
) -> Path:
    """Write a BEV PNG: grey points (coloured by height), GT green, predictions red,
    pseudo labels blue (positive) / orange dashed (ignored, label -1)."""
    fig, ax = plt.subplots(figsize=(8, 8), dpi=110)
    pts = np.asarray(points)
    if len(pts):
        ax.scatter(pts[:, 0], pts[:, 1], s=0.3, c=pts[:, 2], cmap="Greys", vmin=-3, vmax=2)
    _draw(ax, gt, "tab:green", "GT")
    _draw(ax, pred, "tab:red", "prediction")
    if pred is not None and pred_scores is not None:
        for b, s in zip(np.asarray(pred).reshape(-1, 7), pred_scores):
            ax.text(b[0], b[1], f"{s:.2f}", color="tab:red", fontsize=6)
    if pseudo is not None and len(pseudo):
        pl = np.asarray(pseudo_labels if pseudo_labels is not None else np.zeros(len(pseudo)))
        _draw(ax, np.asarray(pseudo)[pl >= 0], "tab:blue", "pseudo positive", "--")
        _draw(ax, np.asarray(pseudo)[pl < 0], "tab:orange", "pseudo ignored (-1)", ":")
    ax.set_aspect("equal")
    if xlim:
        ax.set_xlim(*xlim)
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=7)
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, bbox_inches="tight")
    plt.close(fig)
    return out


# where ``show_frame`` looks for an info's lidar_path below ``data_root`` (first hit wins)
PTS_DIRS = ("", "points", "training/velodyne_reduced", "training/velodyne", "samples/LIDAR_TOP")


def show_frame(
    info_file: str | Path,
    out: str | Path,
    index: int = 0,
    data_root: str | Path | None = None,
    load_dim: int | None = None,
    gt_format: str = "lidar",
    config: str = "pointpillars_synth_source_only_cpu",
    checkpoint: str | None = None,
    pseudo: str | Path | None = None,
) -> Path:
    """BEV plot of one frame of ``info_file``: points, GT cars, optional predictions of
    ``checkpoint`` (built from ``config``) and pseudo labels from an ``adapt`` pkl."""
    info_file = Path(info_file)
    data = load_infos(info_file)
    infos = data["data_list"]
    if not 0 <= index < len(infos):
        raise GroupExpError(f"{info_file}: index {index} out of range (0..{len(infos) - 1})")
    info = infos[index]
    root = Path(data_root or info_file.parent)
    lp = info["lidar_points"]
    cands = [root / sub / lp["lidar_path"] for sub in PTS_DIRS]
    pts_file = next((c for c in cands if c.is_file()), cands[0])
    pts = read_points(str(pts_file), int(load_dim or lp["num_pts_feats"]))
    gt = gt_frame(info, data.get("metainfo", {}), gt_format)
    gt_boxes = gt["boxes"][gt["names"] == "Car"]
    pred = scores = None
    if checkpoint:
        from groupexp_da.engine.config import load_config
        from groupexp_da.engine.infer import build_dataset, build_model, predict_dataset

        cfg = load_config(config)
        ds = dict(cfg.test_dataloader.dataset)
        ds.update(
            data_root=str(root),
            ann_file=str(info_file.resolve()),
            indices=[index],
            data_prefix=dict(pts=str(pts_file.parent)),
        )
        p = predict_dataset(build_model(cfg, checkpoint), build_dataset(ds))[0]
        pred, scores = p["boxes"], p["scores"]
    pseudo_boxes = plab = None
    if pseudo:
        pinfos = {frame_id(i): i for i in load_infos(pseudo, "pseudo-label pkl")["data_list"]}
        inst = pinfos.get(frame_id(info), {}).get("instances", [])
        pseudo_boxes = np.array([i["bbox_3d"] for i in inst]).reshape(-1, 7)
        plab = np.array([i["bbox_label_3d"] for i in inst])
    return bev_plot(
        out,
        pts,
        gt_boxes,
        pred,
        scores,
        pseudo_boxes,
        plab,
        title=f"{info_file.name} frame {frame_id(info)}",
    )
