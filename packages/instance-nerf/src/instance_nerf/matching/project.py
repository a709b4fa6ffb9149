"""Project a 3D instance grid into a camera: ray casting against the occupancy grid (default) or point splatting."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PinholeCamera:
    """OpenGL camera-to-world (4×4, camera looks along −z, y up) and pinhole intrinsics in pixels."""

    c2w: np.ndarray
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def rays(self) -> tuple[np.ndarray, np.ndarray]:
        """Origins and unit directions (H·W, 3) through pixel centres, row-major (as ``data/synth.camera_rays``)."""
        u, v = np.meshgrid(np.arange(self.width) + 0.5, np.arange(self.height) + 0.5)
        d = np.stack(
            [(u - self.cx) / self.fx, -(v - self.cy) / self.fy, -np.ones_like(u)], -1
        ).reshape(-1, 3)
        d = d @ np.asarray(self.c2w, dtype=np.float64)[:3, :3].T
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        o = np.broadcast_to(np.asarray(self.c2w, dtype=np.float64)[:3, 3], d.shape).copy()
        return o, d


def raycast_labels(
    inst_grid: np.ndarray,
    occ: np.ndarray,
    bbox_min: np.ndarray,
    bbox_max: np.ndarray,
    cam: PinholeCamera,
    search_voxels: float = 1.5,
) -> np.ndarray:
    """Label per pixel (H, W): 0 = no instance, k = ``inst_grid`` id k.

    Each ray walks the voxels it crosses (Amanatides–Woo, all rays at once) to the first occupied voxel;
    its label is the first nonzero ``inst_grid`` id among the voxels entered within ``search_voxels``
    voxel lengths after that hit (so a slightly thinner mask than the surface still labels it).
    """
    dims = np.array(occ.shape)
    lo, hi = np.asarray(bbox_min, np.float64), np.asarray(bbox_max, np.float64)
    vox = (hi - lo) / dims
    o, d = cam.rays()
    n = len(o)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        t0, t1 = (lo - o) * inv, (hi - o) * inv
    t_enter = np.nanmax(np.minimum(t0, t1), axis=1).clip(min=0.0)
    t_exit = np.nanmin(np.maximum(t0, t1), axis=1)
    active = t_enter < t_exit
    p = o + d * (t_enter + 1e-9)[:, None]
    idx = np.clip(np.floor((p - lo) / vox).astype(np.int64), 0, dims - 1)
    step = np.where(d > 0, 1, -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        next_edge = lo + (idx + (step > 0)) * vox
        t_max = np.where(d != 0, (next_edge - o) * inv, np.inf)
        t_delta = np.where(d != 0, vox * np.abs(inv), np.inf)
    labels = np.zeros(n, dtype=np.int64)
    t_hit = np.full(n, np.inf)
    t_cell = t_enter.copy()  # where the ray entered the current voxel
    reach = search_voxels * float(vox.max())
    for _ in range(int(dims.sum()) + 3):
        if not active.any():
            break
        a = np.nonzero(active)[0]
        i, j, k = idx[a].T
        searching = np.isfinite(t_hit[a])
        hit_now = ~searching & occ[i, j, k]
        t_hit[a[hit_now]] = t_cell[a[hit_now]]
        looking = searching | hit_now
        within = looking & (t_cell[a] <= t_hit[a] + reach)
        lab = inst_grid[i, j, k]
        found = within & (lab > 0)
        labels[a[found]] = lab[found]
        active[a[found | (looking & ~within)]] = False
        # advance every still-active ray by one voxel along its nearest boundary
        a = np.nonzero(active)[0]
        axis = np.argmin(t_max[a], axis=1)
        t_cell[a] = t_max[a, axis]
        idx[a, axis] += step[a, axis]
        t_max[a, axis] += t_delta[a, axis]
        out = (idx[a, axis] < 0) | (idx[a, axis] >= dims[axis]) | (t_cell[a] > t_exit[a])
        active[a[out]] = False
    return labels.reshape(cam.height, cam.width)


def splat_labels(
    inst_grid: np.ndarray, bbox_min: np.ndarray, bbox_max: np.ndarray, cam: PinholeCamera
) -> np.ndarray:
    """The authors' projection: every mask voxel centre drawn as a disc of radius ⌈f·δ/(2z)⌉ px.

    Only mask voxels take part in the z-buffer, so unmasked geometry occludes nothing.
    """
    dims = np.array(inst_grid.shape)
    lo, hi = np.asarray(bbox_min, np.float64), np.asarray(bbox_max, np.float64)
    vox = (hi - lo) / dims
    ijk = np.argwhere(inst_grid > 0)
    labels = np.zeros((cam.height, cam.width), dtype=np.int64)
    if len(ijk) == 0:
        return labels
    pts = lo + (ijk + 0.5) * vox
    c2w = np.asarray(cam.c2w, np.float64)
    cam_pts = (pts - c2w[:3, 3]) @ c2w[:3, :3]  # world → camera (columns of R are the camera axes)
    z = -cam_pts[:, 2]
    front = z > 1e-6
    ijk, cam_pts, z = ijk[front], cam_pts[front], z[front]
    u = cam.cx + cam.fx * cam_pts[:, 0] / z
    v = cam.cy - cam.fy * cam_pts[:, 1] / z
    pu, pv = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    radius = np.ceil(cam.fx * float(vox.max()) / (2 * z)).astype(np.int64)
    rmax = int(radius.max())
    off = np.arange(-rmax, rmax + 1)
    du, dv = (a.reshape(-1) for a in np.meshgrid(off, off))
    keep = (du[None] ** 2 + dv[None] ** 2) <= radius[:, None] ** 2
    uu, vv = (pu[:, None] + du[None]), (pv[:, None] + dv[None])
    keep &= (uu >= 0) & (uu < cam.width) & (vv >= 0) & (vv < cam.height)
    point = np.broadcast_to(np.arange(len(z))[:, None], keep.shape)[keep]
    pix = (vv * cam.width + uu)[keep]
    order = np.lexsort((z[point], pix))  # by pixel, then nearest first
    first = np.unique(pix[order], return_index=True)[1]
    winner = point[order][first]
    labels.reshape(-1)[pix[order][first]] = inst_grid[tuple(ijk[winner].T)]
    return labels


def project_instances(
    inst_grid: np.ndarray,
    occ: np.ndarray,
    bbox_min: np.ndarray,
    bbox_max: np.ndarray,
    cam: PinholeCamera,
    mode: str = "raycast",
) -> np.ndarray:
    """Instance ids 0..K seen by ``cam``: ``raycast`` (occlusion by ``occ``) or ``splat`` (the authors' code)."""
    if mode == "raycast":
        return raycast_labels(inst_grid, occ, bbox_min, bbox_max, cam)
    if mode == "splat":
        return splat_labels(inst_grid, bbox_min, bbox_max, cam)
    raise ValueError(f"unknown projection mode {mode!r} (raycast or splat)")
