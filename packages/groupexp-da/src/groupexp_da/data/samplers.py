"""Batch sampler mixing labelled source frames with pseudo-labelled target frames."""

from __future__ import annotations

import math

import numpy as np
from mmdet3d.registry import DATA_SAMPLERS
from mmengine.dist import get_dist_info
from torch.utils.data import Sampler

from groupexp_da.data.io import GroupExpError


@DATA_SAMPLERS.register_module()
class DomainBalancedBatchSampler(Sampler):
    """Batches of ``source_batch`` source + ``target_batch`` target indices over a
    ``ConcatDataset([source, target])``.

    An epoch visits every target frame once (⌈|target| / target_batch⌉ batches); source frames
    are drawn from a permutation that is cycled as needed. The order depends on
    ``(seed, epoch)`` only (the epoch comes from the wrapped sampler's ``set_epoch``); under
    DDP each rank takes every world-size-th batch.
    """

    def __init__(
        self,
        sampler,
        batch_size: int,
        source_batch: int | None = None,
        target_batch: int | None = None,
        seed: int | None = None,
        drop_last: bool = False,
    ) -> None:
        self.sampler = sampler
        ds = sampler.dataset
        sizes = getattr(ds, "cumulative_sizes", None)
        if sizes is None or len(sizes) != 2:
            raise GroupExpError(
                "DomainBalancedBatchSampler needs train_dataloader.dataset to be "
                "a ConcatDataset of [source, target]"
            )
        self.n_source, self.n_target = sizes[0], sizes[1] - sizes[0]
        if self.n_source == 0 or self.n_target == 0:
            raise GroupExpError(
                f"DomainBalancedBatchSampler: empty domain (source "
                f"{self.n_source}, target {self.n_target} frames)"
            )
        self.b_t = int(target_batch or max(1, batch_size // 2))
        self.b_s = int(source_batch if source_batch is not None else batch_size - self.b_t)
        self.seed = int(seed if seed is not None else getattr(sampler, "seed", 0) or 0)
        self.drop_last = drop_last
        self.rank, self.world = get_dist_info()
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _all_batches(self) -> list[list[int]]:
        epoch = getattr(self.sampler, "epoch", self.epoch)
        rng = np.random.default_rng([self.seed, epoch])
        tgt = rng.permutation(self.n_target) + self.n_source
        n_batches = math.ceil(self.n_target / self.b_t)
        reps = math.ceil(n_batches * self.b_s / self.n_source) if self.b_s else 0
        src = np.concatenate(
            [rng.permutation(self.n_source) for _ in range(reps)] or [np.zeros(0, np.int64)]
        )
        out = []
        for b in range(n_batches):
            t = tgt[b * self.b_t : (b + 1) * self.b_t].tolist()
            if self.drop_last and len(t) < self.b_t:
                continue
            out.append(src[b * self.b_s : (b + 1) * self.b_s].tolist() + t)
        return out

    def __iter__(self):
        yield from self._all_batches()[self.rank :: self.world]

    def __len__(self) -> int:
        n = math.ceil(self.n_target / self.b_t)
        if self.drop_last and self.n_target % self.b_t:
            n -= 1
        return len(range(self.rank, n, self.world))
