"""InputDataset that adds a per-pixel instance-id tensor (ignored pixels = -1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from nerfstudio.data.datasets.base_dataset import InputDataset
from PIL import Image

from instance_nerf.data.io import atomic_path

IGNORE_8BIT = 255
IGNORE_16BIT = 65535


def load_instance_mask(path: Path, ignore_value: int | None = None) -> np.ndarray:
    """Read a single-channel id PNG as int64 (H, W) with the ignore value mapped to -1."""
    with Image.open(path) as im:
        if im.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
            raise ValueError(
                f"{path}: instance mask must be single-channel 8/16-bit, got mode {im.mode}"
            )
        arr = np.array(im).astype(np.int64)
        bits16 = im.mode.startswith("I")
    ignore = ignore_value if ignore_value is not None else (IGNORE_16BIT if bits16 else IGNORE_8BIT)
    arr[arr == ignore] = -1
    return arr


def save_instance_mask(path: Path, ids: np.ndarray) -> None:
    """Write ids (H, W) as 8-bit PNG (16-bit if any id >= 255); -1 becomes the ignore value."""
    ids = np.asarray(ids)
    if ids.max(initial=0) >= IGNORE_8BIT:
        img = Image.fromarray(np.where(ids < 0, IGNORE_16BIT, ids).astype(np.uint16))
    else:
        img = Image.fromarray(np.where(ids < 0, IGNORE_8BIT, ids).astype(np.uint8), mode="L")
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


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
