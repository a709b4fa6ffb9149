"""Cross-domain alignment transforms, registered in mmdet3d's ``TRANSFORMS``.

Use them from configs through ``custom_imports = dict(imports=['groupexp_da.register'])``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmdet3d.registry import TRANSFORMS
from mmdet3d.structures import LiDARInstance3DBoxes
from mmdet3d.structures.points import LiDARPoints

from groupexp_da.data.geometry import resize_objects
from groupexp_da.data.io import read_points

# ST3D's SHIFT_COOR: move the origin to the road surface.
Z_SHIFT = {"kitti": 1.6, "nuscenes": 1.8, "waymo": 0.0}
# Mean car (l, w, h) per dataset, used by SN and ROS.
MEAN_CAR_SIZE = {
    "kitti": (3.88, 1.63, 1.53),
    "nuscenes": (4.63, 1.96, 1.74),
    "waymo": (4.8, 2.1, 1.78),
}
# Car-like category names in the info files written by mmdet3d's converters.
CAR_NAMES = {"kitti": ("Car",), "nuscenes": ("car",), "waymo": ("Car",)}
META_KEYS = (
    "sample_idx",
    "lidar_path",
    "num_pts_feats",
    "box_mode_3d",
    "box_type_3d",
    "z_shift",
    "pcd_horizontal_flip",
    "pcd_vertical_flip",
    "pcd_trans",
    "pcd_scale_factor",
    "pcd_rotation",
    "pcd_rotation_angle",
    "transformation_3d_flow",
    "lidar2cam",
    "cam2img",
    "lidar2img",
    "img_shape",
    "ori_shape",
    "domain",
)


@TRANSFORMS.register_module()
class LoadPointsXYZ(BaseTransform):
    """Load a point file and keep x, y, z only (intensity scales differ across sensors).

    The per-point dimension comes from ``load_dim`` or, when ``None``, from the
    info's ``lidar_points.num_pts_feats``.
    """

    def __init__(self, load_dim: int | None = None, nan: str = "drop") -> None:
        if nan not in ("drop", "raise"):
            raise ValueError("nan must be 'drop' or 'raise'")
        self.load_dim = load_dim
        self.nan = nan

    def transform(self, results: dict) -> dict:
        lp = results["lidar_points"]
        dim = self.load_dim or int(lp.get("num_pts_feats", results.get("num_pts_feats", 4)))
        pts = read_points(lp["lidar_path"], dim, self.nan)
        results["points"] = LiDARPoints(np.ascontiguousarray(pts[:, :3]), points_dim=3)
        return results


@TRANSFORMS.register_module()
class ShiftZ(BaseTransform):
    """Add a fixed z offset to points and GT boxes (ST3D's ``SHIFT_COOR``).

    ``shift=None`` reads the per-frame ``z_shift`` written in the info (synthetic
    data). The applied value is stored as ``results['z_shift']`` so it can be
    undone on predictions (:func:`undo_z_shift`).
    """

    def __init__(self, shift: float | None = None) -> None:
        self.shift = shift

    def transform(self, results: dict) -> dict:
        dz = self.shift if self.shift is not None else float(results.get("z_shift", 0.0))
        if "points" in results:
            results["points"].translate(torch.tensor([0.0, 0.0, dz]))
        if "gt_bboxes_3d" in results and len(results["gt_bboxes_3d"]) > 0:
            results["gt_bboxes_3d"].translate(torch.tensor([0.0, 0.0, dz]))
        results["z_shift"] = dz
        return results


def undo_z_shift(boxes, shift: float):
    """Move predicted boxes (mmdet3d boxes, tensor or array (N, >=3)) back by ``shift``."""
    if hasattr(boxes, "tensor"):
        out = boxes.clone()
        out.tensor[:, 2] -= shift
        return out
    out = boxes.clone() if isinstance(boxes, torch.Tensor) else np.array(boxes, copy=True)
    out[:, 2] -= shift
    return out


@TRANSFORMS.register_module()
class UnifyCarClass(BaseTransform):
    """Keep the car class only and relabel it to 0.

    Datasets map every category outside ``metainfo.classes`` to -1; with
    ``metainfo=dict(classes=[<the dataset's car name>])`` (see ``CAR_NAMES``)
    the car is label 0 whatever the source dataset. Labels -1 are dropped unless
    ``keep_ignore`` (ST3D pseudo labels use -1 for the ignore band).
    """

    def __init__(self, car_labels: Sequence[int] = (0,), keep_ignore: bool = False) -> None:
        self.car_labels = tuple(int(c) for c in car_labels)
        self.keep_ignore = keep_ignore

    def transform(self, results: dict) -> dict:
        if "gt_labels_3d" not in results:
            return results
        labels = np.asarray(results["gt_labels_3d"])
        is_car = np.isin(labels, self.car_labels)
        keep = is_car | ((labels == -1) & self.keep_ignore)
        results["gt_bboxes_3d"] = results["gt_bboxes_3d"][torch.from_numpy(keep)]
        results["gt_labels_3d"] = np.where(is_car, 0, -1)[keep].astype(np.int64)
        return results


@TRANSFORMS.register_module()
class UnifyPointRange(BaseTransform):
    """Crop points and GT boxes (by BEV centre) to one point-cloud range for all domains."""

    def __init__(self, point_cloud_range: Sequence[float]) -> None:
        self.pcr = np.asarray(point_cloud_range, dtype=np.float32)

    def transform(self, results: dict) -> dict:
        pts = results["points"]
        results["points"] = pts[pts.in_range_3d(self.pcr)]
        if "gt_bboxes_3d" in results:
            boxes = results["gt_bboxes_3d"]
            mask = boxes.in_range_bev(self.pcr[[0, 1, 3, 4]])
            results["gt_bboxes_3d"] = boxes[mask]
            results["gt_labels_3d"] = np.asarray(results["gt_labels_3d"])[mask.numpy().astype(bool)]
        return results


@TRANSFORMS.register_module()
class SetDomain(BaseTransform):
    """Tag the sample with its domain (``'source'`` / ``'target'``); add ``'domain'`` to
    ``Pack3DDetInputs.meta_keys`` so the detector sees it."""

    def __init__(self, domain: str) -> None:
        if domain not in ("source", "target"):
            raise ValueError(f"SetDomain: domain must be 'source' or 'target', got {domain!r}")
        self.domain = domain

    def transform(self, results: dict) -> dict:
        results["domain"] = self.domain
        return results


def _apply_resize(results: dict, new_dims: np.ndarray) -> dict:
    boxes = results["gt_bboxes_3d"]
    pts = results["points"]
    arr = pts.tensor.numpy().astype(np.float64)
    b = boxes.tensor.numpy().astype(np.float64)
    arr[:, :3], b7 = resize_objects(arr[:, :3], b[:, :7], new_dims)
    b[:, :7] = b7
    results["points"] = pts.new_point(arr.astype(np.float32))
    results["gt_bboxes_3d"] = LiDARInstance3DBoxes(
        b.astype(np.float32), box_dim=b.shape[1], origin=(0.5, 0.5, 0)
    )
    return results


@TRANSFORMS.register_module()
class RandomObjectScaling(BaseTransform):
    """ROS: scale every GT box (and its points) by a random factor in ``scale_range``."""

    def __init__(self, scale_range: Sequence[float] = (0.9, 1.1), seed: int | None = None):
        self.scale_range = tuple(scale_range)
        self.rng = np.random.default_rng(seed)

    def transform(self, results: dict) -> dict:
        boxes = results.get("gt_bboxes_3d")
        if boxes is None or len(boxes) == 0:
            return results
        f = self.rng.uniform(*self.scale_range, size=(len(boxes), 1))
        return _apply_resize(results, boxes.tensor.numpy()[:, 3:6].astype(np.float64) * f)


@TRANSFORMS.register_module()
class StatNormalize(BaseTransform):
    """SN: shift car sizes by ``target_mean - source_mean`` (l, w, h), stretching the points."""

    def __init__(self, source_mean: Sequence[float], target_mean: Sequence[float]) -> None:
        self.delta = np.asarray(target_mean, np.float64) - np.asarray(source_mean, np.float64)

    def transform(self, results: dict) -> dict:
        boxes = results.get("gt_bboxes_3d")
        if boxes is None or len(boxes) == 0:
            return results
        dims = boxes.tensor.numpy()[:, 3:6].astype(np.float64) + self.delta
        return _apply_resize(results, np.maximum(dims, 0.1))
