"""Scene-level projection and matching: cameras from the dataparser, ``masks3d.npz``, projected and matched folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from instance_nerf.data.dataparser import InstanceDataParserConfig
from instance_nerf.data.io import (
    InstanceNerfError,
    read_npz,
    save_instance_mask,
    save_npz,
    write_json,
)
from instance_nerf.data.panoptic import read_panoptic
from instance_nerf.matching.match import match_view
from instance_nerf.matching.project import PinholeCamera, project_instances

MASKS3D_KEYS = ("masks", "boxes", "labels", "scores", "instance_grid", "bbox_min", "bbox_max")


def scene_cameras(scene: Path, split: str = "train") -> dict[str, PinholeCamera]:
    """{image stem: camera} of one split, read through the dataparser (same frame and scale as training)."""
    parser = InstanceDataParserConfig(data=Path(scene)).setup()
    out = parser.get_dataparser_outputs(split=split)
    cams = out.cameras
    result = {}
    for i, f in enumerate(out.image_filenames):
        c2w = np.eye(4)
        c2w[:3] = cams.camera_to_worlds[i].numpy()
        result[Path(f).stem] = PinholeCamera(
            c2w,
            float(cams.fx[i]),
            float(cams.fy[i]),
            float(cams.cx[i]),
            float(cams.cy[i]),
            int(cams.width[i]),
            int(cams.height[i]),
        )
    return result


def instance_grid_from_masks(masks: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(W, L, H) int16: 0 none, 1..K by falling score; a voxel in several masks takes the higher score."""
    grid = np.zeros(masks.shape[1:], dtype=np.int16)
    for rank, k in enumerate(np.argsort(-np.asarray(scores), kind="stable")[::-1]):
        grid[masks[k]] = len(scores) - rank
    return grid


def save_masks3d(path: Path, masks, boxes, labels, scores, bbox_min, bbox_max, classes) -> Path:
    """Write ``masks3d.npz`` with masks sorted by falling score, so instance id k is row k − 1."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    masks = np.asarray(masks, bool)[order]
    scores = np.asarray(scores, np.float32)[order]
    return save_npz(
        path,
        masks=masks,
        boxes=np.asarray(boxes, np.float32).reshape(-1, 6)[order],
        labels=np.asarray(labels, np.int64)[order],
        scores=scores,
        instance_grid=instance_grid_from_masks(masks, scores),
        bbox_min=np.asarray(bbox_min, np.float32),
        bbox_max=np.asarray(bbox_max, np.float32),
        classes=np.asarray(list(classes)),
    )


def load_masks3d(path: Path) -> dict[str, np.ndarray]:
    """Read ``masks3d.npz`` (checks the keys)."""
    return read_npz(path, MASKS3D_KEYS)


def oracle_masks3d(scene: Path, out: Path) -> Path:
    """``masks3d.npz`` from the true voxel grid of a synthetic scene (``scene.npz``): the oracle 3D masks."""
    from instance_nerf.data.synth import CLASSES

    s = read_npz(
        Path(scene) / "scene.npz", ("instance_grid", "grid_bounds", "instance_ids", "class_ids")
    )
    grid = s["instance_grid"]
    masks, boxes = [], []
    for k in s["instance_ids"]:
        m = grid == k
        ijk = np.argwhere(m)
        masks.append(m)
        boxes.append(np.concatenate([ijk.min(0), ijk.max(0) + 1]) if len(ijk) else np.zeros(6))
    return save_masks3d(
        out,
        np.stack(masks),
        np.stack(boxes),
        s["class_ids"],
        np.ones(len(masks)),
        s["grid_bounds"][0],
        s["grid_bounds"][1],
        CLASSES,
    )


def occupancy_from_grid(path: Path) -> np.ndarray:
    """Occupancy ``alpha ≥ .5`` of an RCNN input grid (``rgbsigma``; density converted unless ``sigma_is_alpha``)."""
    g = read_npz(path, ("rgbsigma", "bbox_min", "bbox_max"))
    sigma = g["rgbsigma"][..., 3].astype(np.float64)
    if not bool(g.get("sigma_is_alpha", np.array(False))):
        dims = np.array(sigma.shape)
        voxel = float(((g["bbox_max"] - g["bbox_min"]) / dims).max())
        sigma = 1.0 - np.exp(-np.clip(sigma, 0, None) * voxel)
    return sigma >= 0.5


def project_scene(
    scene: Path, occ: np.ndarray, masks3d: Path, out: Path, mode: str = "raycast"
) -> dict:
    """Write ``out/<stem>.png`` (ids 0..K) for every training view; returns pixel counts per view."""
    m = load_masks3d(masks3d)
    if occ.shape != m["instance_grid"].shape:
        raise InstanceNerfError(
            f"{masks3d}: 3D masks are {m['instance_grid'].shape}, the occupancy grid is {occ.shape}"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for stem, cam in scene_cameras(scene, "train").items():
        labels = project_instances(m["instance_grid"], occ, m["bbox_min"], m["bbox_max"], cam, mode)
        save_instance_mask(out / f"{stem}.png", labels)
        counts[stem] = int((labels > 0).sum())
    return counts


def match_scene(
    scene: Path,
    panoptic: Path,
    projected: Path,
    masks3d: Path,
    out: Path,
    iou_thresh: float = 0.05,
    split_merged: bool = False,
) -> dict:
    """Match every training view; write ``out/<stem>.png`` and ``<out>.json`` (the dataparser's instances json)."""
    from instance_nerf.data.io import load_instance_mask

    cams = scene_cameras(scene, "train")
    stems = list(cams)
    views = read_panoptic(panoptic, stems, [(c.width, c.height) for c in cams.values()])
    m = load_masks3d(masks3d)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    totals: dict[str, int] = {}
    for stem in stems:
        ppath = Path(projected) / f"{stem}.png"
        if not ppath.is_file():
            raise InstanceNerfError(
                f"{ppath}: projection missing (run `instance-nerf project` first)"
            )
        seg, segments = views[stem]
        ids, stats = match_view(seg, segments, load_instance_mask(ppath), iou_thresh, split_merged)
        save_instance_mask(out / f"{stem}.png", ids)
        for k, v in stats.items():
            totals[k] = totals.get(k, 0) + v
    write_instances_json(out.parent / f"{out.name}.json", m)
    return totals


def write_instances_json(path: Path, m: dict[str, np.ndarray]) -> Path:
    """``instances_matched.json``: K + 1 logits, the RCNN's classes, one record per 3D instance."""
    k = len(m["scores"])
    return write_json(
        path,
        {
            "num_instances": k + 1,
            "classes": [str(c) for c in m["classes"]],
            "instances": [{"id": 0, "class_id": 0}]
            + [
                {"id": i + 1, "class_id": int(m["labels"][i]), "score": float(m["scores"][i])}
                for i in range(k)
            ],
        },
    )
