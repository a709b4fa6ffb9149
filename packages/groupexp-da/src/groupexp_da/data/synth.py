"""Procedural LiDAR domain-shift benchmark: ray-cast a spinning LiDAR over simple scenes.

A scene is a flat ground plane, cars (two stacked oriented boxes: body + cabin),
buildings (large boxes), poles (thin boxes) and vegetation (spheres that drop
rays at random). The sensor sits at ``sensor_height`` above the ground, so in
the LiDAR frame the ground is at ``z = -sensor_height`` like in KITTI/nuScenes.
Every frame is deterministic given ``(seed, frame index)``.

Outputs follow mmdet3d's v2 info layout (``metainfo`` + ``data_list``) with
``bbox_3d`` in the LiDAR frame, bottom-centred ``(x, y, z, dx, dy, dz, yaw)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from groupexp_da.data.io import GroupExpError, atomic_path, write_pickle

FOCAL_PX = 721.5  # KITTI-like focal length used for the pseudo 2D box height


@dataclass(frozen=True)
class LidarSpec:
    beams: int = 64
    fov_up: float = 2.0
    fov_down: float = -24.8
    azimuth_steps: int = 1024
    hfov: tuple[float, float] = (-90.0, 90.0)
    max_range: float = 80.0
    range_noise: float = 0.02
    dropout: float = 0.05
    sensor_height: float = 1.73
    point_dim: int = 4


@dataclass(frozen=True)
class SceneSpec:
    car_size_mean: tuple[float, float, float] = (3.88, 1.63, 1.53)
    car_size_std: tuple[float, float, float] = (0.35, 0.10, 0.08)
    cars: tuple[int, int] = (6, 14)
    buildings: tuple[int, int] = (2, 5)
    poles: tuple[int, int] = (3, 8)
    bushes: tuple[int, int] = (3, 8)
    area: tuple[float, float, float, float] = (3.0, 36.0, -17.0, 17.0)  # xmin xmax ymin ymax


@dataclass(frozen=True)
class DomainSpec:
    name: str
    lidar: LidarSpec = field(default_factory=LidarSpec)
    scene: SceneSpec = field(default_factory=SceneSpec)
    z_shift: float = 1.6


DOMAINS: dict[str, DomainSpec] = {
    # KITTI-like: 64 beams, 1.73 m mount, KITTI car sizes.
    "source": DomainSpec("source", LidarSpec(), SceneSpec(), z_shift=1.6),
    # nuScenes-like: 32 beams over a wider FOV, 1.84 m mount, bigger cars, more dropout.
    "target": DomainSpec(
        "target",
        LidarSpec(
            beams=32,
            fov_up=10.0,
            fov_down=-30.0,
            azimuth_steps=1024,
            max_range=70.0,
            range_noise=0.03,
            dropout=0.12,
            sensor_height=1.84,
            point_dim=5,
        ),
        SceneSpec(car_size_mean=(4.63, 1.96, 1.74), car_size_std=(0.40, 0.12, 0.10)),
        z_shift=1.8,
    ),
}


def _boxes_overlap_bev(a: np.ndarray, others: list[np.ndarray], margin: float = 0.5) -> bool:
    """Cheap circle test between a box (x, y, dx, dy) and already placed boxes."""
    ra = 0.5 * np.hypot(a[2], a[3]) + margin
    for o in others:
        if np.hypot(a[0] - o[0], a[1] - o[1]) < ra + 0.5 * np.hypot(o[2], o[3]):
            return True
    return False


def make_scene(spec: SceneSpec, ground_z: float, rng: np.random.Generator) -> dict:
    """Sample a scene. Returns cars (N, 7) plus solid boxes (M, 7) and bushes (K, 4)."""
    x0, x1, y0, y1 = spec.area
    placed: list[np.ndarray] = []
    cars = []
    for _ in range(int(rng.integers(spec.cars[0], spec.cars[1] + 1))):
        for _try in range(20):
            lwh = np.maximum(rng.normal(spec.car_size_mean, spec.car_size_std), [2.5, 1.2, 1.1])
            xy = rng.uniform([x0, y0], [x1, y1])
            yaw = (
                rng.choice([0.0, np.pi]) + rng.normal(0, 0.15)
                if rng.random() < 0.7
                else rng.uniform(-np.pi, np.pi)
            )
            cand = np.array([xy[0], xy[1], lwh[0], lwh[1]])
            if not _boxes_overlap_bev(cand, placed):
                placed.append(cand)
                cars.append([xy[0], xy[1], ground_z, *lwh, (yaw + np.pi) % (2 * np.pi) - np.pi])
                break
    solids = []
    for _ in range(int(rng.integers(spec.buildings[0], spec.buildings[1] + 1))):
        for _try in range(20):
            side = rng.choice([-1.0, 1.0])
            xy = np.array([rng.uniform(x0, x1 + 15), side * rng.uniform(16, 30)])
            dims = rng.uniform([8, 5, 4], [20, 10, 12])
            cand = np.array([xy[0], xy[1], dims[0], dims[1]])
            if not _boxes_overlap_bev(cand, placed):
                placed.append(cand)
                solids.append([xy[0], xy[1], ground_z, *dims, rng.normal(0, 0.1)])
                break
    for _ in range(int(rng.integers(spec.poles[0], spec.poles[1] + 1))):
        xy = rng.uniform([x0, y0], [x1, y1])
        cand = np.array([xy[0], xy[1], 0.3, 0.3])
        if not _boxes_overlap_bev(cand, placed, margin=0.3):
            placed.append(cand)
            solids.append([xy[0], xy[1], ground_z, 0.25, 0.25, rng.uniform(3, 7), 0.0])
    bushes = []
    for _ in range(int(rng.integers(spec.bushes[0], spec.bushes[1] + 1))):
        xy = rng.uniform([x0, y0], [x1, y1])
        r = rng.uniform(0.5, 1.4)
        cand = np.array([xy[0], xy[1], 2 * r, 2 * r])
        if not _boxes_overlap_bev(cand, placed, margin=0.2):
            placed.append(cand)
            bushes.append([xy[0], xy[1], ground_z + 0.6 * r, r])
    return {
        "cars": np.asarray(cars, dtype=np.float64).reshape(-1, 7),
        "solids": np.asarray(solids, dtype=np.float64).reshape(-1, 7),
        "bushes": np.asarray(bushes, dtype=np.float64).reshape(-1, 4),
    }


def car_parts(cars: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split each car into body, cabin and two wheel blocks: (parts (4N, 7), owner (4N,))."""
    parts, owner = [], []
    for i, (x, y, z, ln, w, h, yaw) in enumerate(cars):
        parts.append([x, y, z + 0.15 * h, ln, w, 0.5 * h, yaw])  # body above the wheels
        off = -0.08 * ln
        parts.append(
            [
                x + off * np.cos(yaw),
                y + off * np.sin(yaw),
                z + 0.65 * h,
                0.55 * ln,
                0.92 * w,
                0.35 * h,
                yaw,
            ]
        )
        owner += [i, i]
        parts.append(
            [
                x + 0.3 * ln * np.cos(yaw),
                y + 0.3 * ln * np.sin(yaw),
                z,
                0.2 * ln,
                0.9 * w,
                0.15 * h,
                yaw,
            ]
        )  # front wheels/bumper
        parts.append(
            [
                x - 0.3 * ln * np.cos(yaw),
                y - 0.3 * ln * np.sin(yaw),
                z,
                0.2 * ln,
                0.9 * w,
                0.15 * h,
                yaw,
            ]
        )  # rear wheels
        owner += [i, i]
    return np.asarray(parts).reshape(-1, 7), np.asarray(owner, dtype=np.int64)


def _ray_boxes_dense(dirs: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Distance along unit rays from the origin to oriented boxes, (R, B), inf on miss."""
    c, s = np.cos(boxes[:, 6]), np.sin(boxes[:, 6])
    ox, oy = -boxes[:, 0], -boxes[:, 1]  # origin relative to box centre
    lo = (c * ox + s * oy, -s * ox + c * oy, -(boxes[:, 2] + 0.5 * boxes[:, 5]))
    dx, dy, dz = dirs[:, 0:1], dirs[:, 1:2], dirs[:, 2:3]
    ld = (c * dx + s * dy, -s * dx + c * dy, np.broadcast_to(dz, (len(dirs), len(boxes))))
    half = 0.5 * boxes[:, 3:6]
    tmin = np.full((len(dirs), len(boxes)), -np.inf)
    tmax = np.full((len(dirs), len(boxes)), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        for k in range(3):
            inv = 1.0 / ld[k]
            t1 = (-half[:, k] - lo[k]) * inv
            t2 = (half[:, k] - lo[k]) * inv
            tmin = np.maximum(tmin, np.nan_to_num(np.minimum(t1, t2), nan=-np.inf))
            tmax = np.minimum(tmax, np.nan_to_num(np.maximum(t1, t2), nan=np.inf))
    hit = (tmax >= tmin) & (tmax > 0)
    return np.where(hit, np.maximum(tmin, 0.0), np.inf)


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi


def _ray_boxes(dirs: np.ndarray, boxes: np.ndarray, n_sectors: int = 48) -> np.ndarray:
    """Like :func:`_ray_boxes_dense` but only tests boxes inside each ray's azimuth sector."""
    out = np.full((len(dirs), len(boxes)), np.inf)
    if len(boxes) == 0 or len(dirs) == 0:
        return out
    az = np.arctan2(dirs[:, 1], dirs[:, 0])
    ctr = np.arctan2(boxes[:, 1], boxes[:, 0])
    rad = 0.5 * np.hypot(boxes[:, 3], boxes[:, 4])
    dist = np.hypot(boxes[:, 0], boxes[:, 1])
    half = np.where(dist > rad, np.arcsin(np.clip(rad / np.maximum(dist, 1e-9), 0, 1)), np.pi)
    edges = np.linspace(-np.pi, np.pi, n_sectors + 1)
    sector = np.clip(np.searchsorted(edges, az, side="right") - 1, 0, n_sectors - 1)
    sec_half = np.pi / n_sectors
    for k in range(n_sectors):
        rays = np.flatnonzero(sector == k)
        if rays.size == 0:
            continue
        mid = 0.5 * (edges[k] + edges[k + 1])
        cand = np.flatnonzero(np.abs(_wrap(ctr - mid)) <= half + sec_half + 1e-6)
        if cand.size:
            out[np.ix_(rays, cand)] = _ray_boxes_dense(dirs[rays], boxes[cand])
    return out


def _ray_spheres(dirs: np.ndarray, spheres: np.ndarray) -> np.ndarray:
    if len(spheres) == 0:
        return np.full((len(dirs), 0), np.inf, dtype=np.float32)
    b = dirs @ spheres[:, :3].T
    cc = (spheres[:, :3] ** 2).sum(1) - spheres[:, 3] ** 2
    disc = b**2 - cc
    t = b - np.sqrt(np.maximum(disc, 0))
    return np.where((disc >= 0) & (t > 0), t, np.inf).astype(np.float32)


def ray_directions(spec: LidarSpec) -> tuple[np.ndarray, np.ndarray]:
    """Unit ray directions (R, 3) and their beam (ring) index."""
    elev = np.deg2rad(np.linspace(spec.fov_down, spec.fov_up, spec.beams))
    az = np.deg2rad(np.linspace(spec.hfov[0], spec.hfov[1], spec.azimuth_steps, endpoint=False))
    e, a = np.meshgrid(elev, az, indexing="ij")
    dirs = np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], -1).reshape(-1, 3)
    ring = np.repeat(np.arange(spec.beams), spec.azimuth_steps)
    return dirs.astype(np.float64), ring


def cast(spec: LidarSpec, scene: dict, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast one sweep. Returns points (P, point_dim) float32 and car index per point (-1)."""
    dirs, ring = ray_directions(spec)
    jitter = rng.normal(0, 0.0015, dirs.shape)  # small angular jitter
    dirs = dirs + jitter
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    ground_z = -spec.sensor_height
    with np.errstate(divide="ignore"):
        t_ground = np.where(dirs[:, 2] < -1e-6, ground_z / dirs[:, 2], np.inf)
    parts, owner = car_parts(scene["cars"])
    t_parts = _ray_boxes(dirs, parts)
    t_solid = _ray_boxes(dirs, scene["solids"])
    t_bush = _ray_spheres(dirs, scene["bushes"])
    # vegetation is porous: each ray passes through a bush with probability 0.4
    t_bush = np.where(rng.random(t_bush.shape) < 0.4, np.inf, t_bush)
    all_t = np.concatenate([t_ground[:, None], t_parts, t_solid, t_bush], axis=1)
    idx = np.argmin(all_t, axis=1)
    t = all_t[np.arange(len(dirs)), idx]
    keep = np.isfinite(t) & (t < spec.max_range) & (t > 1.0)
    keep &= rng.random(len(t)) >= spec.dropout
    t = t + rng.normal(0, spec.range_noise, t.shape)
    car_of = np.full(len(t), -1, dtype=np.int64)
    is_part = (idx >= 1) & (idx < 1 + len(parts))
    car_of[is_part] = owner[idx[is_part] - 1]
    xyz = dirs * t[:, None]
    intensity = np.clip(np.abs(dirs[:, 2]) * 0.5 + rng.uniform(0, 0.3, len(t)), 0, 1)
    cols = [xyz, intensity[:, None]]
    if spec.point_dim >= 5:
        cols.append(ring[:, None].astype(np.float64))
    pts = np.concatenate(cols, axis=1)[:, : spec.point_dim]
    return pts[keep].astype(np.float32), car_of[keep]


def _instances(cars: np.ndarray, counts: np.ndarray) -> list[dict]:
    out = []
    for box, n in zip(cars, counts):
        if n == 0:
            continue  # invisible cars are not labelled
        dist = float(np.hypot(box[0], box[1]))
        occl = 0 if n >= 50 else 1 if n >= 15 else 2 if n >= 5 else 3
        h_px = FOCAL_PX * box[5] / max(dist, 1.0)
        out.append(
            {
                "bbox_3d": [float(v) for v in box],
                "bbox_label_3d": 0,
                "bbox_label": 0,
                "num_lidar_pts": int(n),
                "occluded": occl,
                "truncated": 0.0,
                "bbox": [0.0, 0.0, 1.0, float(h_px)],
            }
        )
    return out


def synth_frame(domain: DomainSpec, seed: int, index: int) -> tuple[np.ndarray, list[dict]]:
    """One deterministic frame: points and mmdet3d-v2 instances."""
    rng = np.random.default_rng([seed, index, 7919])
    scene = make_scene(domain.scene, -domain.lidar.sensor_height, rng)
    pts, car_of = cast(domain.lidar, scene, rng)
    counts = np.bincount(car_of[car_of >= 0], minlength=len(scene["cars"]))
    return pts, _instances(scene["cars"], counts)


def write_domain(
    out: str | Path,
    domain: str | DomainSpec,
    frames: int,
    seed: int = 0,
    val_fraction: float = 0.2,
    beams: int | None = None,
    progress: bool = False,
    workers: int = 0,
) -> dict[str, Path]:
    """Write ``DIR/points/*.bin`` and ``DIR/{train,val}_infos.pkl`` for one domain
    (``workers`` > 0 ray-casts frames in that many processes; frames stay deterministic)."""
    spec = DOMAINS[domain] if isinstance(domain, str) else domain
    if beams is not None:
        spec = replace(spec, lidar=replace(spec.lidar, beams=beams))
    out = Path(out)
    if frames < 2:
        raise GroupExpError(
            f"{out}: --frames {frames}: need at least 2 frames (one train, one val)"
        )
    (out / "points").mkdir(parents=True, exist_ok=True)
    data_list = []
    if workers > 0:
        from concurrent.futures import ProcessPoolExecutor
        from functools import partial

        pool = ProcessPoolExecutor(workers)
        frames_iter = pool.map(partial(synth_frame, spec, seed), range(frames), chunksize=4)
    else:
        pool = None
        frames_iter = (synth_frame(spec, seed, i) for i in range(frames))
    if progress:
        from tqdm import tqdm

        frames_iter = tqdm(frames_iter, total=frames, desc=f"synth {spec.name}")
    for i, (pts, inst) in enumerate(frames_iter):
        name = f"{i:06d}.bin"
        with atomic_path(out / "points" / name) as tmp:
            pts.tofile(tmp)
        data_list.append(
            {
                "sample_idx": i,
                "lidar_points": {"num_pts_feats": spec.lidar.point_dim, "lidar_path": name},
                "instances": inst,
                "z_shift": spec.z_shift,
            }
        )
    if pool is not None:
        pool.shutdown()
    n_val = max(1, int(round(frames * val_fraction)))
    meta = {
        "categories": {"Car": 0},
        "dataset": f"groupexp_synth_{spec.name}",
        "info_version": "1.1",
        "domain": asdict(spec),
        "seed": seed,
    }
    paths = {}
    for split, items in (("train", data_list[:-n_val]), ("val", data_list[-n_val:])):
        paths[split] = out / f"{split}_infos.pkl"
        write_pickle(paths[split], {"metainfo": meta, "data_list": items})
    return paths
