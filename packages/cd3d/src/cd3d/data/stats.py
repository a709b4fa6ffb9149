"""Per-channel normalisation statistics of a training split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .dataset import ChangeDataset
from .io import write_json


def compute_stats(
    root: str | Path,
    split: str = "train",
    layout: str = "auto",
    out: str | Path | None = None,
    split_seed: int = 0,
) -> dict:
    """Mean/std per channel (images in [0, 1]) over both epochs of ``split``, plus target stats;
    with ``out`` also written there as JSON."""
    ds = ChangeDataset(root, split, layout, cache=False, split_seed=split_seed)
    s = np.zeros(3)
    s2 = np.zeros(3)
    n = 0
    changed = total = 0
    hmin, hmax = np.inf, -np.inf
    for i in range(len(ds)):
        t = ds.raw(i)
        for k in ("before", "after"):
            x = t[k].reshape(3, -1).astype(np.float64)
            s += x.sum(1)
            s2 += (x**2).sum(1)
            n += x.shape[1]
        changed += int(t["mask"].sum())
        total += t["mask"].size
        if "height" in t:
            hmin, hmax = min(hmin, float(t["height"].min())), max(hmax, float(t["height"].max()))
    mean = s / n
    std = np.sqrt(np.maximum(s2 / n - mean**2, 1e-12))
    st = {
        "split": split,
        "tiles": len(ds),
        "skipped": ds.skipped,
        "mean": mean.round(6).tolist(),
        "std": std.round(6).tolist(),
        "change_fraction": changed / max(total, 1),
        "height_min": hmin if ds.has_3d else None,
        "height_max": hmax if ds.has_3d else None,
    }
    if out is not None:
        write_json(out, st)
    return st
