"""Evaluate a detector on a dataset split: metrics.json, per-tile CSV and a figure grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data.dataset import ChangeDataset
from ..data.io import atomic_path, write_csv, write_json
from ..models.wrapper import Predictor
from .metrics import KEYS, KEYS_2D, ChangeMetrics


@torch.no_grad()
def evaluate(
    det: Predictor,
    root: str | Path,
    split: str = "test",
    out: str | Path | None = None,
    layout: str = "auto",
    batch_size: int = 4,
    tta: bool | str = False,
    device: str = "cpu",
    figure_tiles: int = 4,
    threshold: float = 0.5,
    split_seed: int = 0,
) -> dict:
    """Dataset-level metrics (see :mod:`cd3d.eval.metrics`); with ``out`` also writes
    ``metrics.json``, ``per_tile.csv`` and ``figure.png``.

    The 3D keys are left out when the data has no height maps (A/B/label layout) or the detector
    was trained with ``task="2d"``; the figure then shows the 2D panels only.
    """
    ds = ChangeDataset(root, split, layout, split_seed=split_seed)
    with_3d = ds.has_3d and getattr(det, "task", "3d") == "3d"
    keys = KEYS if with_3d else KEYS_2D
    dev = torch.device(device)
    det = det.to(dev).eval()
    total = ChangeMetrics().to(dev)
    rows, shown = [], []
    for s in range(0, len(ds), batch_size):
        items = [ds[i] for i in range(s, min(s + batch_size, len(ds)))]
        b = torch.stack([it["before"] for it in items]).to(dev)
        a = torch.stack([it["after"] for it in items]).to(dev)
        m = torch.stack([it["mask"] for it in items]).to(dev)
        prob, ph = det.predict(b, a, tta=tta)
        pm = (prob >= threshold).long()
        h = None
        if with_3d:
            h = torch.stack([it["height"] for it in items]).to(dev)
            ph = ph[..., : h.shape[-2], : h.shape[-1]]
        total.update(pm, m, ph if with_3d else None, h)
        for j, it in enumerate(items):
            one = ChangeMetrics().to(dev)
            one.update(
                pm[j : j + 1], m[j : j + 1], *((ph[j : j + 1], h[j : j + 1]) if with_3d else ())
            )
            res_j = one.compute()
            rows.append(
                {
                    "tile": it["name"],
                    **{k: round(res_j[k], 6) for k in keys},
                    "changed_px": int(m[j].sum()),
                }
            )
            if len(shown) < figure_tiles:
                shown.append((it, prob[j].cpu().numpy(), ph[j].cpu().numpy() if with_3d else None))
    full = total.compute()
    res = {k: float(full[k]) for k in keys}
    res |= {
        "split": split,
        "tiles": len(ds),
        "skipped": ds.skipped,
        "task": "3d" if with_3d else "2d",
    }
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "metrics.json", res)
        write_csv(out / "per_tile.csv", rows)
        figure_grid(shown, out / "figure.png", threshold)
    return res


def figure_grid(shown: list, path: Path, threshold: float = 0.5) -> None:
    """Rows of before / after / 2D truth / 2D prediction, plus 3D truth / 3D prediction with a colour
    bar in metres when the rows carry heights (``ph`` not None)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not shown:
        return
    with_3d = shown[0][2] is not None
    cols = 6 if with_3d else 4
    fig, axes = plt.subplots(
        len(shown), cols, figsize=(2.5 * cols, 2.6 * len(shown)), squeeze=False
    )
    titles = ["before", "after", "2D truth", "2D prediction", "3D truth (m)", "3D prediction (m)"]
    lim = 1.0
    if with_3d:
        lim = max(
            [1.0]
            + [
                max(float(np.abs(it["height"].numpy()).max()), float(np.abs(ph).max()))
                for it, _, ph in shown
            ]
        )
    for r, (it, prob, ph) in enumerate(shown):
        panels = [
            it["before"].permute(1, 2, 0).numpy(),
            it["after"].permute(1, 2, 0).numpy(),
            it["mask"].numpy(),
            (prob >= threshold).astype(np.uint8),
        ]
        for c, img in enumerate(panels):
            axes[r, c].imshow(img, cmap=None if img.ndim == 3 else "gray", vmin=0, vmax=1)
        if with_3d:
            im = axes[r, 4].imshow(it["height"].numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
            axes[r, 5].imshow(ph, cmap="RdBu_r", vmin=-lim, vmax=lim)
        axes[r, 0].set_ylabel(it["name"], fontsize=7)
        for c in range(cols):
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            if r == 0:
                axes[r, c].set_title(titles[c], fontsize=9)
    if with_3d:
        fig.colorbar(im, ax=axes[:, 4:].ravel().tolist(), label="elevation change (m)", shrink=0.8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)
