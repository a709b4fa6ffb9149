"""Training grids for NeRF-RCNN: analytic rooms with NeRF-like corruption, stored as ``grids/``, ``targets/``, ``split.json``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from instance_nerf.data.io import InstanceNerfError, read_json, read_npz, save_npz, write_json
from instance_nerf.data.synth import CLASSES, SCENE_AABB, build_scene


def grid_points(aabb: np.ndarray, resolution: int) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Voxel centres (N, 3) over ``aabb`` with the longest side ``resolution`` (as ``engine/grid.grid_axes``)."""
    ext = aabb[1] - aabb[0]
    dims = np.maximum(np.round(ext / ext.max() * resolution).astype(int), 1)
    axes = [aabb[0, i] + (np.arange(dims[i]) + 0.5) * ext[i] / dims[i] for i in range(3)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3), tuple(
        int(d) for d in dims
    )


def analytic_grid(
    prims, resolution: int, corrupt: bool, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """rgbsigma (W, L, H, 4) with alpha, the voxel instance ids, object AABBs in voxels, and classes.

    Alpha is 1 inside any primitive (floor and walls too) and RGB the albedo × 0.8 there, U(0, .2) elsewhere.
    ``corrupt`` applies, each with p .5: hollow shells, blur, floaters, alpha noise, brightness change.
    """
    from scipy import ndimage

    pts, dims = grid_points(SCENE_AABB, resolution)
    ids = np.full(len(pts), -1, dtype=np.int16)
    rgb = rng.uniform(0, 0.2, size=(len(pts), 3))
    for prim in prims:
        inside = prim.inside(pts)
        ids[inside] = prim.instance_id
        rgb[inside] = prim.albedo(pts[inside]) * 0.8
    ids = ids.reshape(dims)
    alpha = (ids >= 0).astype(np.float64)
    rgb = rgb.reshape(*dims, 3)
    if corrupt:
        if rng.random() < 0.5:  # hollow objects: keep a 1–2 voxel shell
            t = int(rng.integers(1, 3))
            for k in np.unique(ids[ids > 0]):
                m = ids == k
                core = ndimage.binary_erosion(m, iterations=t)
                alpha[core] = 0.0
        if rng.random() < 0.5:
            alpha = ndimage.gaussian_filter(alpha, rng.uniform(0, 0.8))
        if rng.random() < 0.5:
            for _ in range(int(rng.integers(0, 11))):
                c = rng.uniform(0, dims)
                r = rng.uniform(1, 2)
                g = np.stack(np.meshgrid(*[np.arange(n) + 0.5 for n in dims], indexing="ij"), -1)
                blob = ((g - c) ** 2).sum(-1) <= r * r
                alpha[blob] = np.maximum(alpha[blob], rng.uniform(0.3, 1.0))
        if rng.random() < 0.5:
            alpha = alpha + rng.normal(0, 0.05, size=alpha.shape)
        if rng.random() < 0.5:
            rgb = rgb + rng.uniform(-0.1, 0.1)
    scale = np.asarray(dims) / (SCENE_AABB[1] - SCENE_AABB[0])
    objects = [p for p in prims if p.instance_id > 0]
    boxes = np.array(
        [
            np.concatenate(
                [(p.aabb()[0] - SCENE_AABB[0]) * scale, (p.aabb()[1] - SCENE_AABB[0]) * scale]
            )
            for p in objects
        ],
        dtype=np.float32,
    ).reshape(-1, 6)
    boxes = np.clip(boxes, 0, np.tile(dims, 2))
    rgbsigma = np.concatenate([np.clip(rgb, 0, 1), np.clip(alpha, 0, 1)[..., None]], -1).astype(
        np.float16
    )
    return {
        "rgbsigma": rgbsigma,
        "sigma_is_alpha": np.array(True),
        "bbox_min": SCENE_AABB[0].astype(np.float32),
        "bbox_max": SCENE_AABB[1].astype(np.float32),
        "instance_grid": ids,
        "boxes": boxes,
        "labels": np.array([p.class_id for p in objects], dtype=np.int64),
        "instance_ids": np.array([p.instance_id for p in objects], dtype=np.int64),
    }


def synth_grids(
    out: Path,
    seeds: range,
    resolution: int = 64,
    corrupt: bool = True,
    objects: tuple[int, int] = (3, 8),
    val_fraction: float = 0.1,
) -> dict:
    """Write ``grids/<seed>.npz``, ``targets/<seed>.npz`` and ``split.json`` (last ``val_fraction`` = val)."""
    out = Path(out)
    names = []
    for seed in seeds:
        name = f"{seed:05d}"
        names.append(name)
        if (out / "targets" / f"{name}.npz").is_file():
            continue  # resumable
        rng = np.random.default_rng(seed)
        prims = build_scene(rng, int(rng.integers(objects[0], objects[1] + 1)))
        g = analytic_grid(prims, resolution, corrupt, rng)
        save_npz(
            out / "grids" / f"{name}.npz",
            **{k: g[k] for k in ("rgbsigma", "sigma_is_alpha", "bbox_min", "bbox_max")},
        )
        save_npz(
            out / "targets" / f"{name}.npz",
            **{k: g[k] for k in ("instance_grid", "boxes", "labels", "instance_ids")},
        )
    n_val = max(1, int(round(len(names) * val_fraction))) if len(names) > 1 else 0
    split = {
        "train": names[: len(names) - n_val],
        "val": names[len(names) - n_val :],
        "classes": CLASSES,
        "resolution": resolution,
    }
    write_json(out / "split.json", split)
    return {
        "out": str(out),
        "scenes": len(names),
        "train": len(split["train"]),
        "val": len(split["val"]),
    }


def grid_tensor(path: Path) -> Tensor:
    """``rgbsigma`` (W, L, H, 4) of a grid file as a float (4, W, L, H) tensor (density → alpha if needed)."""
    g = read_npz(path, ("rgbsigma",))
    rs = g["rgbsigma"].astype(np.float32)
    if rs.ndim != 4 or rs.shape[-1] != 4:
        raise InstanceNerfError(f"{path}: rgbsigma has shape {rs.shape}, expected (W, L, H, 4)")
    if not bool(g.get("sigma_is_alpha", np.array(False))):
        voxel = (
            float(((g["bbox_max"] - g["bbox_min"]) / np.array(rs.shape[:3])).max())
            if "bbox_max" in g
            else 1.0
        )
        rs[..., 3] = 1.0 - np.exp(-np.clip(rs[..., 3], 0, None) * voxel)
    return torch.from_numpy(rs).permute(3, 0, 1, 2).contiguous()


class GridDataset(Dataset):
    """(grid (4, W, L, H), target {boxes, labels, masks}) per scene of a split, with flips / rot90 about z."""

    def __init__(self, root: Path, split: str = "train", augment: bool = False, seed: int = 0):
        self.root = Path(root)
        meta = read_json(self.root / "split.json")
        if split not in meta:
            raise InstanceNerfError(f"{self.root / 'split.json'}: no split {split!r}")
        self.names = list(meta[split])
        self.classes = list(meta.get("classes", CLASSES))
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        """Augmentation draws depend on (seed, epoch, index) only, so they survive workers and resuming."""

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int):
        name = self.names[i]
        grid = grid_tensor(self.root / "grids" / f"{name}.npz")
        t = read_npz(
            self.root / "targets" / f"{name}.npz",
            ("instance_grid", "boxes", "labels", "instance_ids"),
        )
        ids = torch.from_numpy(t["instance_grid"].astype(np.int64))
        masks = (
            torch.stack([ids == int(k) for k in t["instance_ids"]])
            if len(t["instance_ids"])
            else torch.zeros((0, *ids.shape), dtype=torch.bool)
        )
        boxes = torch.from_numpy(t["boxes"].astype(np.float32))
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            grid, masks, boxes = augment(grid, masks, boxes, rng)
        return grid, {"boxes": boxes, "labels": torch.from_numpy(t["labels"]), "masks": masks}


def augment(grid: Tensor, masks: Tensor, boxes: Tensor, rng: np.random.Generator):
    """Flip x, flip y and rotate by π/2 about z, each with p .5 (boxes follow)."""
    size = list(grid.shape[1:])
    for axis in (0, 1):
        if rng.random() < 0.5:
            grid, masks = grid.flip(axis + 1), masks.flip(axis + 1)
            lo, hi = boxes[:, axis].clone(), boxes[:, axis + 3].clone()
            boxes[:, axis], boxes[:, axis + 3] = size[axis] - hi, size[axis] - lo
    if (
        rng.random() < 0.5
    ):  # torch.rot90 over (x, y): new[i, j] = old[j, L − 1 − i], so (x, y) → (L − y, x)
        grid, masks = grid.rot90(1, (1, 2)), masks.rot90(1, (1, 2))
        n = size[1]
        boxes = torch.stack(
            [n - boxes[:, 4], boxes[:, 0], boxes[:, 2], n - boxes[:, 1], boxes[:, 3], boxes[:, 5]],
            1,
        )
    return grid.contiguous(), masks.contiguous(), boxes


def collate(batch):
    grids, targets = zip(*batch)
    return torch.stack(grids), list(targets)
