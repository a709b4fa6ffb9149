"""Procedural indoor-like rooms with exact RGB, depth, instance and semantic maps (nerfstudio format).

World frame is z-up. The room is a floor and two back walls (instance 0 = background/structure)
with several textured boxes, spheres and cylinders (instances 1..K). Cameras look into the room
from the open corner. Every view is ray-cast analytically, so masks and depth are exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from instance_nerf.data.io import (
    InstanceNerfError,
    atomic_path,
    save_instance_mask,
    save_npz,
    write_json,
)
from instance_nerf.data.primitives import CLASSES, Box, Cylinder, Primitive, Sphere

LIGHT = np.array([0.45, 0.3, 1.0]) / np.linalg.norm([0.45, 0.3, 1.0])
BACKGROUND_RGB = np.array([1.0, 1.0, 1.0])
SCENE_AABB = np.array([[-1.05, -1.05, -0.05], [1.0, 1.0, 1.0]])


@dataclass
class SynthConfig:
    """Knobs of the generator."""

    seed: int = 0
    num_objects: int = 5
    num_views: int = 48
    test_every: int = 6
    width: int = 64
    height: int = 64
    fov_deg: float = 50.0
    voxel_resolution: int = 64


def build_scene(rng: np.random.Generator, num_objects: int) -> list[Primitive]:
    """Floor + two walls (instance 0) and ``num_objects`` non-overlapping objects (ids 1..K)."""
    grey = lambda v: np.array([v, v, v])  # noqa: E731
    prims: list[Primitive] = [
        Box(
            0,
            0,
            grey(0.75),
            grey(0.55),
            4.0,
            lo=np.array([-1.05, -1.05, -0.05]),
            hi=np.array([1.0, 1.0, 0.0]),
        ),
        Box(
            0,
            0,
            np.array([0.85, 0.8, 0.7]),
            np.array([0.7, 0.65, 0.55]),
            3.0,
            lo=np.array([-1.05, -1.05, 0.0]),
            hi=np.array([-1.0, 1.0, 0.9]),
        ),
        Box(
            0,
            0,
            np.array([0.7, 0.78, 0.85]),
            np.array([0.55, 0.62, 0.7]),
            3.0,
            lo=np.array([-1.0, -1.05, 0.0]),
            hi=np.array([1.0, -1.0, 0.9]),
        ),
    ]
    placed: list[tuple[float, float, float]] = []
    kinds = ["box", "sphere", "cylinder"]
    for inst in range(1, num_objects + 1):
        for _ in range(500):
            r = rng.uniform(0.13, 0.24)
            x, y = rng.uniform(-0.75, 0.75, size=2)
            if all(math.hypot(x - px, y - py) > r + pr + 0.06 for px, py, pr in placed):
                break
        else:
            raise RuntimeError(f"could not place {num_objects} objects without overlap")
        placed.append((x, y, r))
        kind = kinds[(inst - 1) % 3] if inst <= 3 else kinds[int(rng.integers(3))]
        hue = rng.uniform(0, 1)
        ca = np.clip(
            np.array([math.cos(2 * math.pi * (hue + k / 3)) for k in range(3)]) * 0.4 + 0.55, 0, 1
        )
        cb = ca * 0.55
        freq = float(rng.uniform(6.0, 12.0))
        cls = CLASSES.index(kind)
        if kind == "box":
            hx, hy = r * rng.uniform(0.7, 1.0, size=2)
            hz = rng.uniform(0.15, 0.5)
            prims.append(
                Box(
                    inst,
                    cls,
                    ca,
                    cb,
                    freq,
                    lo=np.array([x - hx, y - hy, 0.0]),
                    hi=np.array([x + hx, y + hy, hz]),
                )
            )
        elif kind == "sphere":
            prims.append(Sphere(inst, cls, ca, cb, freq, center=np.array([x, y, r]), radius=r))
        else:
            prims.append(
                Cylinder(
                    inst,
                    cls,
                    ca,
                    cb,
                    freq,
                    center_xy=np.array([x, y]),
                    radius=0.85 * r,
                    z0=0.0,
                    z1=float(rng.uniform(0.2, 0.6)),
                )
            )
    return prims


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """OpenGL camera-to-world (4x4): camera looks along -z, y up, world z-up."""
    fwd = target - eye
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, fwd)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, up, -fwd, eye
    return c2w


def make_cameras(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Views from the open corner: azimuth 0..90 deg, radius 2.2..2.8, height 1.2..2.2."""
    cams = []
    for i in range(n):
        az = math.radians(90.0 * (i + rng.uniform(0.2, 0.8)) / n)
        rad, h = rng.uniform(2.2, 2.8), rng.uniform(1.2, 2.2)
        eye = np.array([rad * math.cos(az), rad * math.sin(az), h])
        target = np.array([-0.25, -0.25, 0.2]) + rng.uniform(-0.1, 0.1, size=3)
        cams.append(look_at(eye, target))
    return cams


def camera_rays(c2w: np.ndarray, w: int, h: int, focal: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit ray directions through pixel centres (same convention as nerfstudio)."""
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    dirs = np.stack([(u - w / 2) / focal, -(v - h / 2) / focal, -np.ones_like(u)], -1).reshape(
        -1, 3
    )
    dirs = dirs @ c2w[:3, :3].T
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    return np.broadcast_to(c2w[:3, 3], dirs.shape).copy(), dirs


def render_view(
    prims: list[Primitive], c2w: np.ndarray, w: int, h: int, focal: float
) -> dict[str, np.ndarray]:
    """Exact RGB (H,W,3 float), depth along the ray (0 = miss), instance and semantic ids."""
    o, d = camera_rays(c2w, w, h, focal)
    best_t = np.full(len(o), np.inf)
    best = np.full(len(o), -1)
    normals = np.zeros_like(o)
    for k, prim in enumerate(prims):
        t, n = prim.intersect(o, d)
        closer = t < best_t
        best_t = np.where(closer, t, best_t)
        best = np.where(closer, k, best)
        normals = np.where(closer[:, None], n, normals)
    hit = best >= 0
    p = o + d * np.where(hit, best_t, 0.0)[:, None]
    rgb = np.broadcast_to(BACKGROUND_RGB, o.shape).copy()
    inst = np.zeros(len(o), dtype=np.int64)
    sem = np.zeros(len(o), dtype=np.int64)
    for k, prim in enumerate(prims):
        sel = best == k
        if not sel.any():
            continue
        shade = 0.45 + 0.55 * np.clip(normals[sel] @ LIGHT, 0.0, 1.0)
        rgb[sel] = prim.albedo(p[sel]) * shade[:, None]
        inst[sel], sem[sel] = prim.instance_id, prim.class_id
    return {
        "rgb": rgb.reshape(h, w, 3),
        "depth": np.where(hit, best_t, 0.0).reshape(h, w).astype(np.float32),
        "instance": inst.reshape(h, w),
        "semantic": sem.reshape(h, w),
    }


def voxel_grid(prims: list[Primitive], resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Instance ids on a grid over SCENE_AABB (longest side = resolution), shape (W, L, H), z-up.

    -1 = empty, 0 = structure (floor/walls), k = object k. Returns (grid, voxel centres axes bounds).
    """
    ext = SCENE_AABB[1] - SCENE_AABB[0]
    step = ext.max() / resolution
    dims = np.maximum(np.round(ext / step).astype(int), 1)
    axes = [SCENE_AABB[0, i] + (np.arange(dims[i]) + 0.5) * ext[i] / dims[i] for i in range(3)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    grid = np.full(len(pts), -1, dtype=np.int16)
    for prim in prims:
        grid[prim.inside(pts)] = prim.instance_id
    return grid.reshape(*dims), SCENE_AABB.copy()


def generate(out: Path, cfg: SynthConfig, noisy_masks: bool = False) -> dict:
    """Write a scene to ``out`` and return a summary dict."""
    if cfg.num_objects < 1:
        raise InstanceNerfError("num_objects must be >= 1")
    out = Path(out)
    for sub in ("images", "instances", "semantics", "depth"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(cfg.seed)
    prims = build_scene(rng, cfg.num_objects)
    cams = make_cameras(rng, cfg.num_views)
    focal = 0.5 * cfg.width / math.tan(math.radians(cfg.fov_deg) / 2)
    frames, views = [], []
    for i, c2w in enumerate(cams):
        view = render_view(prims, c2w, cfg.width, cfg.height, focal)
        name = f"frame_{i:04d}"
        with atomic_path(out / "images" / f"{name}.png") as tmp:
            Image.fromarray((view["rgb"] * 255 + 0.5).astype(np.uint8)).save(tmp)
        save_instance_mask(out / "instances" / f"{name}.png", view["instance"])
        save_instance_mask(out / "semantics" / f"{name}.png", view["semantic"])
        with atomic_path(out / "depth" / f"{name}.npy") as tmp:
            np.save(tmp, view["depth"])
        frames.append(
            {
                "file_path": f"images/{name}.png",
                "instance_file_path": f"instances/{name}.png",
                "semantic_file_path": f"semantics/{name}.png",
                "depth_file_path": f"depth/{name}.npy",
                "transform_matrix": c2w.tolist(),
                "split": "test" if i % cfg.test_every == cfg.test_every // 2 else "train",
            }
        )
        views.append(view)
    transforms = {
        "fl_x": focal,
        "fl_y": focal,
        "cx": cfg.width / 2,
        "cy": cfg.height / 2,
        "w": cfg.width,
        "h": cfg.height,
        "aabb": SCENE_AABB.tolist(),
        "frames": frames,
    }
    objects = [p for p in prims if p.instance_id > 0]
    instances = {
        "num_instances": len(objects) + 1,
        "classes": CLASSES,
        "instances": [{"id": 0, "class": "background", "class_id": 0}]
        + [
            {
                "id": p.instance_id,
                "class": p.kind,
                "class_id": p.class_id,
                "aabb": p.aabb().tolist(),
            }
            for p in objects
        ],
    }
    grid, bounds = voxel_grid(prims, cfg.voxel_resolution)
    save_npz(
        out / "scene.npz",
        instance_grid=grid,
        grid_bounds=bounds,
        aabbs=np.array([p.aabb().reshape(-1) for p in objects]),
        instance_ids=np.array([p.instance_id for p in objects]),
        class_ids=np.array([p.class_id for p in objects]),
    )
    write_json(out / "instances.json", instances, indent=1)
    if noisy_masks:
        from instance_nerf.data.noisy import write_noisy_masks

        write_noisy_masks(
            out, [v["instance"] for v in views], [f["file_path"] for f in frames], rng
        )
    write_json(out / "transforms.json", transforms, indent=1)
    return {
        "out": str(out),
        "views": len(frames),
        "objects": len(objects),
        "train": sum(f["split"] == "train" for f in frames),
        "test": sum(f["split"] == "test" for f in frames),
    }
