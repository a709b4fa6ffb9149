"""Bird's-eye-view plots: points, GT, predictions and pseudo labels."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from groupexp_da.data.geometry import lidar_box_corners


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


def bev_plot(out: str | Path, points: np.ndarray, gt: np.ndarray | None = None,
             pred: np.ndarray | None = None, pred_scores: np.ndarray | None = None,
             pseudo: np.ndarray | None = None, pseudo_labels: np.ndarray | None = None,
             xlim: tuple[float, float] | None = None, ylim: tuple[float, float] | None = None,
             title: str = "") -> Path:
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
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp.png")
    fig.savefig(tmp, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, out)
    return out
