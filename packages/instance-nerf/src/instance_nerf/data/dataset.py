"""InputDataset that adds a per-pixel instance-id tensor (ignored pixels = -1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from nerfstudio.data.datasets.base_dataset import InputDataset
from PIL import Image

from instance_nerf.data.io import IGNORE_8BIT, IGNORE_16BIT, load_instance_mask, save_instance_mask

__all__ = [
    "IGNORE_8BIT",
    "IGNORE_16BIT",
    "InstanceDataset",
    "load_instance_mask",
    "save_instance_mask",
]


class InstanceDataset(InputDataset):
    """Adds ``batch["instance"]`` (H, W, 1) int64; frames without a mask are all -1 (colour only)."""

    def __init__(self, dataparser_outputs, scale_factor: float = 1.0):
        super().__init__(dataparser_outputs, scale_factor)
        self.instance_filenames = self.metadata.get("instance_filenames") or [None] * len(self)
        self.ignore_value = self.metadata.get("instance_ignore_value")
        self.num_instances = int(self.metadata.get("num_instances", 0) or 0)

    def get_metadata(self, data: dict) -> dict:
        idx = data["image_idx"]
        h, w = data["image"].shape[:2]
        path = self.instance_filenames[idx]
        if path is None:
            return {"instance": torch.full((h, w, 1), -1, dtype=torch.long)}
        ids = load_instance_mask(Path(path), self.ignore_value)
        if self.num_instances and ids.max(initial=-1) >= self.num_instances:
            raise ValueError(
                f"{path}: instance id {ids.max()} >= num_instances {self.num_instances}"
            )
        if ids.shape != (h, w):
            if self.scale_factor == 1.0:
                raise ValueError(f"{path}: mask is {ids.shape[::-1]}, image is {(w, h)}")
            ids = np.array(Image.fromarray(ids.astype(np.int32)).resize((w, h), Image.NEAREST))
        return {"instance": torch.from_numpy(ids.astype(np.int64))[..., None]}
