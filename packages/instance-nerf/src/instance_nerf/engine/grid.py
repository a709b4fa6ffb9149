"""Sample a trained field on a regular grid (NeRF-RPN convention) and at arbitrary points."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from instance_nerf.data.io import InstanceNerfError, atomic_write, read_npy, save_npz

# fn(points (N,3), dirs (K,3) unit view directions per camera origin) -> rgb (N,3), sigma (N,), logits (N,L)
FieldFn = Callable[[Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]


def grid_axes(aabb: np.ndarray, resolution: int) -> list[np.ndarray]:
    """Voxel-centre coordinates per axis; the longest AABB side gets ``resolution`` voxels."""
    aabb = np.asarray(aabb, dtype=np.float64)
    ext = aabb[1] - aabb[0]
    if np.any(ext <= 0):
        raise InstanceNerfError(f"degenerate AABB {aabb.tolist()}")
    dims = np.maximum(np.round(ext / ext.max() * resolution).astype(int), 1)
    return [aabb[0, i] + (np.arange(dims[i]) + 0.5) * ext[i] / dims[i] for i in range(3)]


@torch.no_grad()
def extract_grid(
    fn: FieldFn,
    aabb: np.ndarray,
    resolution: int,
    cam_origins: Tensor,
    chunk: int = 65536,
    alpha: bool = False,
) -> dict[str, np.ndarray]:
    """Return rgbsigma (W, L, H, 4) (x -> W, y -> L, z -> H, z-up), instance argmax and its probability.

    RGB is averaged over the directions from each camera origin to the voxel; sigma is raw density
    unless ``alpha`` (then 1 - exp(-sigma * voxel size)).
    """
    axes = grid_axes(aabb, resolution)
    dims = tuple(len(a) for a in axes)
    pts = torch.from_numpy(np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)).float()
    rgb_out, sig_out, id_out, prob_out = [], [], [], []
    for s in range(0, len(pts), chunk):
        p = pts[s : s + chunk]
        dirs = p[None] - cam_origins[:, None].to(p)  # (K, N, 3)
        dirs = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-9)
        rgb, sigma, logits = fn(p, dirs)
        prob = logits.softmax(-1)
        conf, ids = prob.max(-1)
        rgb_out.append(rgb.cpu())
        sig_out.append(sigma.reshape(-1).cpu())
        id_out.append(ids.cpu())
        prob_out.append(conf.cpu())
    sigma = torch.cat(sig_out)
    if alpha:
        voxel = float((np.asarray(aabb)[1] - np.asarray(aabb)[0]).max() / resolution)
        sigma = 1.0 - torch.exp(-sigma * voxel)
    rgbsigma = torch.cat([torch.cat(rgb_out), sigma[:, None]], -1).reshape(*dims, 4)
    return {
        "rgbsigma": rgbsigma.numpy().astype(np.float32),
        "instance": torch.cat(id_out).reshape(dims).numpy().astype(np.int16),
        "instance_prob": torch.cat(prob_out).reshape(dims).numpy().astype(np.float16),
        "bbox_min": np.asarray(aabb[0], dtype=np.float32),
        "bbox_max": np.asarray(aabb[1], dtype=np.float32),
    }


def model_field_fn(model, device: torch.device | str = "cpu") -> FieldFn:
    """Wrap an InstanceNerfModel's field as a :data:`FieldFn` (eval mode, average appearance)."""
    from nerfstudio.cameras.rays import Frustums, RaySamples
    from nerfstudio.field_components.field_heads import FieldHeadNames

    field = model.field

    def samples(p: Tensor, d: Tensor) -> RaySamples:
        n = len(p)
        z = torch.zeros(n, 1, device=device)
        return RaySamples(
            frustums=Frustums(
                origins=p, directions=d, starts=z, ends=z, pixel_area=torch.ones_like(z)
            ),
            camera_indices=torch.zeros(n, 1, dtype=torch.long, device=device),
        )

    def fn(p: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        p = p.to(device)
        rs = samples(p, dirs[0].to(device))
        density, geo = field.get_density(rs)
        if hasattr(field, "instance_logits"):
            logits = field.instance_logits(field._sample_locations, geo)
        else:  # a plain nerfacto run (the RCNN's input grid): one "background" logit
            logits = torch.zeros(len(p), 1, device=device)
        rgb = torch.zeros(len(p), 3, device=device)
        for d in dirs:
            out = field.get_outputs(samples(p, d.to(device)), density_embedding=geo)
            rgb += out[FieldHeadNames.RGB]
        return rgb / len(dirs), density.reshape(-1), logits

    return fn


@torch.no_grad()
def query_points(fn: FieldFn, points: Tensor, chunk: int = 65536) -> dict[str, np.ndarray]:
    """Instance id, its probability and the density at world points (N, 3)."""
    ids, probs, dens = [], [], []
    up = torch.tensor([[0.0, 0.0, -1.0]])
    for s in range(0, len(points), chunk):
        p = points[s : s + chunk].float()
        _, sigma, logits = fn(p, up.expand(1, len(p), 3))
        conf, k = logits.softmax(-1).max(-1)
        ids.append(k.cpu())
        probs.append(conf.cpu())
        dens.append(sigma.reshape(-1).cpu())
    return {
        "instance": torch.cat(ids).numpy(),
        "probability": torch.cat(probs).numpy(),
        "density": torch.cat(dens).numpy(),
    }


def query_run(
    pipeline,
    points_file: str | Path,
    out: str | Path | None = None,
    device: str = "cpu",
    show: int = 10,
) -> list[str]:
    """Query a run's field at the (N, 3) points of a ``.npy`` file; optionally save an ``.npz``; return rows."""
    pts = read_npy(points_file)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise InstanceNerfError(f"{points_file}: expected an (N, 3) array, got shape {pts.shape}")
    res = query_points(
        model_field_fn(pipeline.model, device), torch.from_numpy(pts.astype(np.float32))
    )
    if out:
        save_npz(out, points=pts, **res)
    rows = zip(pts, res["instance"], res["probability"], res["density"])
    return [
        f"{p[0]:+.3f} {p[1]:+.3f} {p[2]:+.3f}  id={int(k)}  p={float(pr):.3f}  density={float(d):.3f}"
        for p, k, pr, d in list(rows)[:show]
    ]


def write_ply(path: str | Path, xyz: np.ndarray, rgb: np.ndarray) -> Path:
    """ASCII PLY point cloud with uint8 colours, written atomically."""
    col = np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)
    with atomic_write(path) as f:
        f.write("ply\nformat ascii 1.0\n")
        f.write(f"element vertex {len(xyz)}\n")
        f.write("property float x\nproperty float y\nproperty float z\n")
        f.write("property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n")
        for (x, y, z), (r, g, b) in zip(xyz, col):
            f.write(f"{x:.5f} {y:.5f} {z:.5f} {r} {g} {b}\n")
    return Path(path)


def pipeline_grid(
    pipeline,
    resolution: int,
    num_views: int,
    alpha: bool = False,
    device: torch.device | str = "cpu",
) -> dict[str, np.ndarray]:
    """:func:`extract_grid` over a loaded pipeline's scene box, colours averaged over ``num_views`` train cameras."""
    fn = model_field_fn(pipeline.model, device)
    aabb = pipeline.model.scene_box.aabb.cpu().numpy()
    cams = pipeline.datamanager.train_dataset.cameras.camera_to_worlds[:, :3, 3]
    idx = np.linspace(0, len(cams) - 1, min(num_views, len(cams))).round().astype(int)
    grid = extract_grid(fn, aabb, resolution, cams[idx], alpha=alpha)
    grid["sigma_is_alpha"] = np.array(bool(alpha))
    return grid


def occupied_per_instance(grid: dict[str, np.ndarray], min_density: float) -> dict[int, int]:
    """Voxels above ``min_density`` per argmax instance id."""
    ids, counts = np.unique(
        grid["instance"][grid["rgbsigma"][..., 3] > min_density], return_counts=True
    )
    return {int(i): int(c) for i, c in zip(ids, counts)}


def save_grid(path: str | Path, grid: dict[str, np.ndarray]) -> Path:
    """Write a grid dict (``rgbsigma``, ``instance``, ...) as a compressed ``.npz``, atomically."""
    return save_npz(path, **grid)


def export_instances_ply(
    grid: dict[str, np.ndarray], out: str | Path, min_density: float, with_background: bool = False
) -> dict[int, int]:
    """One ``instance_XXX.ply`` per instance id (occupied voxel centres with their colour); returns point counts."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dims = grid["instance"].shape
    aabb = np.stack([grid["bbox_min"], grid["bbox_max"]]).astype(np.float64)
    axes = [
        aabb[0, i] + (np.arange(dims[i]) + 0.5) * (aabb[1, i] - aabb[0, i]) / dims[i]
        for i in range(3)
    ]
    xyz = np.stack(np.meshgrid(*axes, indexing="ij"), -1)
    occ = grid["rgbsigma"][..., 3] > min_density
    written = {}
    for k in np.unique(grid["instance"][occ]):
        if k == 0 and not with_background:
            continue
        sel = occ & (grid["instance"] == k)
        write_ply(out / f"instance_{int(k):03d}.ply", xyz[sel], grid["rgbsigma"][sel][:, :3])
        written[int(k)] = int(sel.sum())
    return written


def write_mesh_ply(path: str | Path, verts: np.ndarray, faces: np.ndarray) -> Path:
    """ASCII PLY triangle mesh, written atomically."""
    with atomic_write(path) as f:
        f.write(f"ply\nformat ascii 1.0\nelement vertex {len(verts)}\n")
        f.write("property float x\nproperty float y\nproperty float z\n")
        f.write(f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n")
        for x, y, z in verts:
            f.write(f"{x:.5f} {y:.5f} {z:.5f}\n")
        for a, b, c in faces:
            f.write(f"3 {a} {b} {c}\n")
    return Path(path)


def export_instances_mesh(
    grid: dict[str, np.ndarray], out: str | Path, min_density: float, with_background: bool = False
) -> dict[int, int]:
    """One ``instance_XXX_mesh.ply`` per instance: marching cubes (scikit-image) on its occupied voxels.

    Returns the triangle count per instance. Vertices are in world coordinates (voxel centres at level 0.5).
    """
    from skimage.measure import marching_cubes

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dims = np.array(grid["instance"].shape)
    lo = np.asarray(grid["bbox_min"], np.float64)
    step = (np.asarray(grid["bbox_max"], np.float64) - lo) / dims
    occ = grid["rgbsigma"][..., 3] > min_density
    written = {}
    for k in np.unique(grid["instance"][occ]):
        if k == 0 and not with_background:
            continue
        vol = np.pad((occ & (grid["instance"] == k)).astype(np.float32), 1)
        if vol.sum() == 0:
            continue
        verts, faces, _, _ = marching_cubes(vol, level=0.5)
        world = lo + (verts - 1 + 0.5) * step  # undo the pad; voxel i's centre is at index i
        write_mesh_ply(out / f"instance_{int(k):03d}_mesh.ply", world, faces)
        written[int(k)] = int(len(faces))
    return written
