"""Lightning data module over the train/val splits of a 3DCD-layout dataset."""

from __future__ import annotations

import lightning as L
from torch.utils.data import DataLoader, DistributedSampler

from ..data.dataset import ChangeDataset
from ..data.transforms import PairedAugment


class CD3DDataModule(L.LightningDataModule):
    """Train split with :class:`PairedAugment` (if ``augment``), val split without.

    Under DDP each loader gets a ``DistributedSampler`` (Lightning sets its epoch), so each rank
    reads its own share of every epoch; ``shuffle=False`` keeps the file order, which makes a
    2-process run comparable with 1 process.
    """

    def __init__(
        self,
        root: str,
        layout: str = "auto",
        batch_size: int = 4,
        num_workers: int = 0,
        augment: bool = True,
        val_split: str = "val",
        split_seed: int = 0,
        shuffle: bool = True,
    ) -> None:
        super().__init__()
        self.split_seed, self.shuffle = split_seed, shuffle
        self.root, self.layout, self.bs, self.nw = root, layout, batch_size, num_workers
        self.augment, self.val_split = augment, val_split
        self.train_ds: ChangeDataset | None = None
        self.val_ds: ChangeDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_ds is None:
            tf = PairedAugment() if self.augment else None
            kw = {"layout": self.layout, "split_seed": self.split_seed}
            self.train_ds = ChangeDataset(self.root, "train", transform=tf, **kw)
            self.val_ds = ChangeDataset(self.root, self.val_split, **kw)

    def _loader(self, ds: ChangeDataset, shuffle: bool) -> DataLoader:
        sampler = None
        if self.trainer is not None and self.trainer.world_size > 1:
            # Lightning's own replacement always shuffles the train split; this one keeps ``shuffle``
            world, rank = self.trainer.world_size, self.trainer.global_rank
            sampler = DistributedSampler(
                ds, num_replicas=world, rank=rank, shuffle=shuffle, seed=self.split_seed
            )
        return DataLoader(
            ds,
            batch_size=self.bs,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            num_workers=self.nw,
            drop_last=shuffle and len(ds) > self.bs,
            persistent_workers=self.nw > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_ds, self.shuffle)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_ds, False)
