"""Torch dataset over a metadata table."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from spheroid_rank.data.io import read_image


def load_tensor(path: str, size: int, focal: str = "sharpest") -> torch.Tensor:
    """Image as a (C, size, size) float tensor: short side resized to ``size``, centre crop."""
    img = read_image(path, focal=focal)
    arr = img[None] if img.ndim == 2 else img
    t = torch.from_numpy(np.ascontiguousarray(arr))
    t = v2.functional.resize(t, size, antialias=True)
    return v2.functional.center_crop(t, [size, size]).clamp(0, 1)


class SpheroidImages(Dataset):
    """Images of a metadata table, pre-resized to ``load_size`` and optionally cached.

    ``transform`` maps a (C, H, W) tensor to a view (or a list of views for SSL).
    Items are ``(views, index)``.
    """

    def __init__(
        self,
        table: pd.DataFrame,
        load_size: int = 96,
        focal: str = "sharpest",
        transform: Callable | None = None,
        cache: bool = True,
    ) -> None:
        self.paths = list(table["path"])
        self.load_size, self.focal, self.transform = load_size, focal, transform
        self._cache: dict[int, torch.Tensor] | None = {} if cache else None

    @property
    def channels(self) -> int:
        return 3 if self.focal == "channels" else 1

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, i: int) -> torch.Tensor:
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        t = load_tensor(self.paths[i], self.load_size, self.focal)
        if self._cache is not None:
            self._cache[i] = t
        return t

    def preload(self) -> SpheroidImages:
        """Decode every image once (the cache is then shared with forked workers)."""
        for i in range(len(self)):
            self.image(i)
        return self

    def __getitem__(self, i: int):
        x = self.image(i)
        return (self.transform(x) if self.transform else x), i
