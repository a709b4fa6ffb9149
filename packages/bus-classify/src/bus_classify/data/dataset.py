"""Torch dataset over split-CSV rows or samples."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.data import Dataset

from bus_classify.data.sources import read_sample


class BusDataset(Dataset):
    """Rows with ``path`` and ``label``; returns ``(image tensor, label)``.

    Unreadable files raise :class:`~bus_classify.data.io.ImageReadError` naming the file.
    """

    def __init__(self, rows: list[dict], transform: Callable, cache: bool = False) -> None:
        self.rows = rows
        self.transform = transform
        self._cache: dict[int, object] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.rows)

    def image(self, i: int):
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        img = read_sample(self.rows[i]["path"])
        if self._cache is not None:
            self._cache[i] = img
        return img

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.image(i)), int(self.rows[i]["label"])

    @property
    def labels(self) -> list[int]:
        return [int(r["label"]) for r in self.rows]
