"""Lightning data module over a split CSV."""

from __future__ import annotations

import logging
from collections import Counter

import lightning as L
import torch
from torch.utils.data import DataLoader, WeightedRandomSampler

from bus_classify.data.dataset import BusDataset
from bus_classify.data.io import BusClassifyError
from bus_classify.data.split import check_paths, read_csv, relabel
from bus_classify.data.transforms import build_transform

log = logging.getLogger(__name__)


def balanced_sampler(labels: list[int], seed: int = 0) -> WeightedRandomSampler:
    """Draw each class equally often (with replacement), one epoch = ``len(labels)`` draws."""
    counts = Counter(labels)
    weights = torch.tensor([1.0 / counts[y] for y in labels], dtype=torch.double)
    gen = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler(weights, num_samples=len(labels), replacement=True, generator=gen)


class BusDataModule(L.LightningDataModule):
    """Train/val/test loaders from ``split.csv`` rows (paths + labels + split)."""

    def __init__(
        self,
        *,
        split_csv: str,
        img_size: int = 224,
        batch_size: int = 32,
        parula: bool = False,
        augment: bool | str = "light",
        resize: str = "letterbox",
        crop_scale: float | None = None,
        intensity: float = 0.0,
        sampler: str = "none",
        num_workers: int = 2,
        cache_images: bool = False,
        seed: int = 0,
        task: str = "binary",
        seg_aux: float = 0.0,
    ) -> None:
        """``seg_aux`` > 0 makes the training split return lesion masks too (see
        :class:`~bus_classify.data.dataset.BusDataset`)."""
        super().__init__()
        self.rows = relabel(read_csv(split_csv), task, str(split_csv))
        check_paths(self.rows, split_csv)
        self.split_csv = split_csv
        self.img_size, self.batch_size, self.parula = img_size, batch_size, parula
        self.sampler, self.num_workers, self.cache, self.seed = (
            sampler,
            num_workers,
            cache_images,
            seed,
        )
        for s in ("train", "val"):
            if not any(r["split"] == s for r in self.rows):
                raise BusClassifyError(f"{split_csv}: no rows in the {s!r} split")
        train_classes = {r["label"] for r in self.rows if r["split"] == "train"}
        if len(train_classes) < 2:
            raise BusClassifyError(
                f"{split_csv}: the train split has one class only "
                f"(labels {sorted(train_classes)} for task {task!r})"
            )
        self.datasets = {
            s: BusDataset(
                [r for r in self.rows if r["split"] == s],
                build_transform(
                    img_size,
                    train=s == "train",
                    parula=parula,
                    augment=augment,
                    resize=resize,
                    crop_scale=crop_scale,
                    intensity=intensity,
                ),
                cache_images,
                masks=s == "train" and seg_aux > 0,
            )
            for s in ("train", "val", "test")
        }
        if seg_aux > 0:
            train = self.datasets["train"]
            n = train.count_masks()
            log.info("lesion-mask loss: %d of %d training images have a mask file", n, len(train))
            if n == 0:
                log.warning(
                    "%s: seg_aux=%s but no training image has a mask (<stem>_mask.png); "
                    "the mask loss is 0",
                    split_csv,
                    seg_aux,
                )

    @property
    def train_labels(self) -> list[int]:
        return self.datasets["train"].labels

    def _loader(self, split: str, shuffle: bool, sampler=None) -> DataLoader:
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            drop_last=False,
        )

    def train_dataloader(self) -> DataLoader:
        if self.sampler == "balanced":
            return self._loader("train", True, balanced_sampler(self.train_labels, self.seed))
        if self.sampler != "none":
            raise BusClassifyError(f"unknown sampler {self.sampler!r}; use none or balanced")
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)
