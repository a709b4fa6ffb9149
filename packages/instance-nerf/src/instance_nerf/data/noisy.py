"""Noisy, per-view inconsistent masks: what an off-the-shelf 2D panoptic model would give."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from instance_nerf.data.dataset import save_instance_mask
from instance_nerf.data.io import write_json


def _shift_or(m: np.ndarray) -> np.ndarray:
    """3x3 binary dilation with numpy shifts."""
    p = np.pad(m, 1)
    h, w = m.shape
    return np.any([p[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)], axis=0)


def morph(mask: np.ndarray, steps: int) -> np.ndarray:
    """Dilate (steps > 0) or erode (steps < 0) a boolean mask by |steps| pixels."""
    out = mask.copy()
    for _ in range(abs(steps)):
        out = _shift_or(out) if steps > 0 else ~_shift_or(~out)
    return out


def perturb_view(
    ids: np.ndarray, rng: np.random.Generator, p_drop: float = 0.15, p_blob: float = 0.5
) -> tuple[np.ndarray, dict[int, int]]:
    """Erode/dilate, drop instances, add a false blob, then permute ids.

    Returns the noisy map and {noisy id: GT id (or -1 for a false blob)}.
    """
    h, w = ids.shape
    out = np.zeros_like(ids)
    source: dict[int, int] = {}
    present = [int(i) for i in np.unique(ids) if i > 0]
    for gid in present:
        if rng.random() < p_drop:
            continue
        m = morph(ids == gid, int(rng.integers(-2, 3)))
        out[m] = gid
        source[gid] = gid
    if rng.random() < p_blob:
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(2, h / 6), rng.uniform(2, w / 6)
        yy, xx = np.mgrid[:h, :w]
        blob_id = max(present, default=0) + 1
        out[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = blob_id
        source[blob_id] = -1
    old = sorted(i for i in source if np.any(out == i))
    perm = rng.permutation(len(old)) + 1
    remap = np.zeros(max(old, default=0) + 1, dtype=np.int64)
    mapping = {}
    for o_id, n_id in zip(old, perm):
        remap[o_id] = n_id
        mapping[int(n_id)] = source[o_id]
    return remap[out], mapping


def write_noisy_masks(
    out: Path, views: list[np.ndarray], files: list[str], rng: np.random.Generator
) -> None:
    """Write ``instances_noisy/<stem>.png`` and ``instances_noisy/mapping.json``."""
    folder = Path(out) / "instances_noisy"
    folder.mkdir(parents=True, exist_ok=True)
    mappings = {}
    for ids, f in zip(views, files):
        noisy, mapping = perturb_view(ids, rng)
        stem = Path(f).stem
        save_instance_mask(folder / f"{stem}.png", noisy)
        mappings[stem] = {str(k): v for k, v in mapping.items()}
    write_json(folder / "mapping.json", mappings, indent=1)
