"""Dataset for info pkls whose ``bbox_3d`` is already in the LiDAR frame (synthetic, pseudo labels)."""

from __future__ import annotations

import numpy as np
from mmdet3d.datasets import Det3DDataset
from mmdet3d.registry import DATASETS
from mmdet3d.structures import LiDARInstance3DBoxes


@DATASETS.register_module()
class LidarCarDataset(Det3DDataset):
    """Car-only LiDAR dataset; boxes are bottom-centred ``(x, y, z, dx, dy, dz, yaw)``.

    Instances labelled -1 (ST3D's ignore band) are kept so the head can mask
    them; the per-frame ``z_shift`` of the info travels with the sample.
    """

    METAINFO = {"classes": ("Car",)}

    def __init__(
        self, *args, box_type_3d: str = "LiDAR", filter_empty_gt: bool = False, **kwargs
    ) -> None:
        super().__init__(*args, box_type_3d=box_type_3d, filter_empty_gt=filter_empty_gt, **kwargs)

    def parse_data_info(self, info: dict) -> dict:
        info = super().parse_data_info(info)
        info.setdefault("z_shift", 0.0)
        return info

    def parse_ann_info(self, info: dict) -> dict:
        ann = super().parse_ann_info(info)
        if ann is None:
            ann = {
                "gt_bboxes_3d": np.zeros((0, 7), dtype=np.float32),
                "gt_labels_3d": np.zeros(0, dtype=np.int64),
            }
        ann["gt_bboxes_3d"] = LiDARInstance3DBoxes(
            np.asarray(ann["gt_bboxes_3d"], np.float32).reshape(-1, 7),
            box_dim=7,
            origin=(0.5, 0.5, 0),
        )
        return ann
