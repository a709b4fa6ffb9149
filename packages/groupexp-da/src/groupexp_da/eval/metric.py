"""mmengine metric wrapping the CPU KITTI AP (``type='CarAPMetric'``)."""

from __future__ import annotations

from collections.abc import Sequence

import mmengine
import numpy as np
from mmdet3d.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from groupexp_da.data.geometry import lidar_box_corners
from groupexp_da.eval.gt import frame_id, gt_frame
from groupexp_da.eval.kitti_ap import kitti_ap


def project_2d(boxes: np.ndarray, lidar2img: np.ndarray, img_hw: tuple[int, int]):
    """2D image boxes of LiDAR boxes (clipped like mmdet3d) and the in-image mask."""
    corners = lidar_box_corners(boxes)
    hom = (
        np.concatenate([corners, np.ones(corners.shape[:2] + (1,))], -1)
        @ np.asarray(lidar2img, np.float64).T
    )
    uv = hom[..., :2] / hom[..., 2:3]
    b = np.concatenate([uv.min(1), uv.max(1)], 1)
    h, w = img_hw
    valid = (b[:, 0] < w) & (b[:, 1] < h) & (b[:, 2] > 0) & (b[:, 3] > 0)
    b[:, 2:] = np.minimum(b[:, 2:], [w, h])
    b[:, :2] = np.maximum(b[:, :2], 0)
    return b, valid


@METRICS.register_module()
class CarAPMetric(BaseMetric):
    """Car AP (R11/R40, BEV/3D) at IoU ``min_overlap`` computed on the CPU.

    Args:
        ann_file: info pkl holding the GT (mmdet3d v2 layout).
        gt_format: ``kitti`` (camera boxes + calib, KITTI difficulties),
            ``nuscenes`` (gravity-centred LiDAR boxes), ``waymo`` or ``lidar``
            (bottom-centred LiDAR boxes, e.g. the synthetic benchmark).
        all_easy: count every car as easy (ST3D protocol for nuScenes/Waymo).
        pcd_limit_range: predictions with the bottom centre outside are dropped
            (as mmdet3d's KittiMetric does); ``None`` keeps all.
        z_shift: value subtracted from predicted z; ``None`` uses the sample's
            ``z_shift`` meta (set by :class:`~groupexp_da.data.transforms.ShiftZ`).
    """

    default_prefix = "car"

    def __init__(
        self,
        ann_file: str,
        gt_format: str = "kitti",
        all_easy: bool = False,
        min_overlap: float = 0.7,
        pcd_limit_range: Sequence[float] | None = (0, -40, -3, 70.4, 40, 0.0),
        z_shift: float | None = None,
        collect_device: str = "cpu",
        prefix: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if gt_format not in ("kitti", "nuscenes", "waymo", "lidar"):
            raise ValueError(f"unknown gt_format {gt_format!r}")
        self.ann_file = ann_file
        self.gt_format = gt_format
        self.all_easy = all_easy
        self.min_overlap = min_overlap
        self.pcd_limit_range = None if pcd_limit_range is None else np.asarray(pcd_limit_range)
        self.z_shift = z_shift
        data = mmengine.load(ann_file)
        meta = data.get("metainfo", {})
        # mmengine datasets report ``sample_idx`` = position in the info list (as mmdet3d's
        # KittiMetric assumes), so frames are keyed by position
        self.infos = dict(enumerate(data["data_list"]))
        self.gts = {k: gt_frame(v, meta, gt_format) for k, v in self.infos.items()}
        self.frame_ids = {k: frame_id(v) for k, v in self.infos.items()}

    def prediction_frame(
        self, sample_idx, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, z_shift: float
    ) -> dict:
        """Filter one frame's car predictions like mmdet3d and attach 2D heights."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 7).copy()
        boxes[:, 2] -= z_shift
        keep = np.asarray(labels).reshape(-1) == 0
        boxes, scores = boxes[keep], np.asarray(scores, np.float64).reshape(-1)[keep]
        height = None
        if self.pcd_limit_range is not None and len(boxes):
            lim = self.pcd_limit_range
            ok = ((boxes[:, :3] > lim[:3]) & (boxes[:, :3] < lim[3:])).all(1)
            boxes, scores = boxes[ok], scores[ok]
        info = self.infos.get(sample_idx, {})
        if self.gt_format == "kitti" and not self.all_easy and "CAM2" in info.get("images", {}):
            cam = info["images"]["CAM2"]
            l2i = np.asarray(
                cam.get("lidar2img", np.asarray(cam["cam2img"]) @ np.asarray(cam["lidar2cam"]))
            )
            b2d, ok = project_2d(boxes, l2i, (int(cam["height"]), int(cam["width"])))
            boxes, scores, height = boxes[ok], scores[ok], (b2d[:, 3] - b2d[:, 1])[ok]
        return {"boxes": boxes, "scores": scores, "height": height}

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for ds in data_samples:
            pred = ds["pred_instances_3d"]
            sid = ds["sample_idx"]
            if sid not in self.gts:
                raise KeyError(
                    f"sample_idx {sid} is beyond the {len(self.gts)} frames of {self.ann_file}"
                )
            dz = self.z_shift if self.z_shift is not None else float(ds.get("z_shift", 0.0))
            frame = self.prediction_frame(
                sid,
                pred["bboxes_3d"].tensor[:, :7].cpu().numpy(),
                pred["scores_3d"].cpu().numpy(),
                pred["labels_3d"].cpu().numpy(),
                dz,
            )
            self.results.append((sid, frame))

    def compute_metrics(self, results: list) -> dict[str, float]:
        ids = [r[0] for r in results]
        dts = [r[1] for r in results]
        gts = [self.gts[i] for i in ids]
        out = kitti_ap(gts, dts, "Car", self.min_overlap, self.all_easy)
        MMLogger.get_current_instance().info(
            "Car AP: " + ", ".join(f"{k}={v:.2f}" for k, v in out.items() if "R40" in k)
        )
        return out
