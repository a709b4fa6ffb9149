"""Torch dataset over split-CSV rows or samples."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from bus_classify.data.sources import check_mask_sizes, mask_index, read_mask, read_sample


class BusDataset(Dataset):
    """Rows with ``path`` and ``label``; returns ``(image tensor, label)``.

    With ``masks`` it returns ``(image, label, mask, has_mask)``: the union of the image's BUSI
    lesion masks (``<stem>_mask*.png``) as a float ``(1, H, W)`` tensor moved by the same
    augmentation as the image, and whether the image has a mask file at all (an image without
    one gets an empty mask and ``has_mask`` 0, so a mask loss can skip it). Unreadable files
    raise :class:`~bus_classify.data.io.ImageReadError` naming the file; a mask of another size
    than its image is a :class:`~bus_classify.data.io.BusClassifyError`.
    """

    def __init__(
        self, rows: list[dict], transform: Callable, cache: bool = False, masks: bool = False
    ) -> None:
        self.rows = rows
        self.transform = transform
        self.masks = masks
        self._mask_files = mask_index(r["path"] for r in rows) if masks else {}
        check_mask_sizes(self._mask_files)
        self._cache: dict[int, object] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.rows)

    def image(self, i: int):
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        img = read_sample(self.rows[i]["path"])
        if self.masks:
            ref = self.rows[i]["path"]
            m = read_mask(ref, img.size, self._mask_files[ref])
            arr = np.zeros((img.size[1], img.size[0]), bool) if m is None else np.asarray(m) > 0
            img = (img, tv_tensors.Mask(torch.from_numpy(arr)[None].to(torch.uint8)), m is not None)
        if self._cache is not None:
            self._cache[i] = img
        return img

    def count_masks(self) -> int:
        """How many rows have a lesion-mask file beside the image."""
        files = self._mask_files or mask_index(r["path"] for r in self.rows)
        return sum(bool(files[r["path"]]) for r in self.rows)

    def __getitem__(self, i: int):
        label = int(self.rows[i]["label"])
        if not self.masks:
            return self.transform(self.image(i)), label
        img, mask, has_mask = self.image(i)
        x, m = self.transform(img, mask)
        return x, label, m.as_subclass(torch.Tensor).float(), float(has_mask)

    @property
    def labels(self) -> list[int]:
        return [int(r["label"]) for r in self.rows]
