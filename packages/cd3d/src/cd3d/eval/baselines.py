"""Trivial reference predictors with the same interface as :class:`ChangeDetector`."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.dataset import ChangeDataset
from ..models.wrapper import Predictor


class NoChange(Predictor, nn.Module):
    """Always predicts 'no change' and 0 m."""

    def forward(
        self, before: torch.Tensor, after: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n, _, h, w = before.shape
        logits = torch.zeros(n, 2, h, w, device=before.device)
        logits[:, 0] = 1.0
        return logits, torch.zeros(n, 1, (h + 1) // 2, (w + 1) // 2, device=before.device)


class ColourDiff(Predictor, nn.Module):
    """Change where the mean absolute RGB difference exceeds ``threshold``; every changed 1 m cell
    gets the constant ``height`` (metres)."""

    def __init__(self, threshold: float = 0.1, height: float = 0.0) -> None:
        super().__init__()
        self.threshold, self.height = float(threshold), float(height)

    def forward(
        self, before: torch.Tensor, after: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        s = (after - before).abs().mean(1) - self.threshold
        logits = torch.stack([-s, s], 1) * 50
        changed = F.max_pool2d((s > 0).float()[:, None], 2, ceil_mode=True)
        return logits, changed * self.height

    @classmethod
    def fit(cls, ds: ChangeDataset, bins: int = 256) -> ColourDiff:
        """Pick the threshold maximising F1 on ``ds`` and the mean non-zero height change."""
        pos, neg = np.zeros(bins), np.zeros(bins)
        hs, hn = 0.0, 0
        for i in range(len(ds)):
            t = ds.raw(i)
            d = np.abs(t["after"] - t["before"]).mean(0)
            idx = np.clip((d * bins).astype(int), 0, bins - 1)
            m = t["mask"].astype(bool)
            pos += np.bincount(idx[m], minlength=bins)
            neg += np.bincount(idx[~m], minlength=bins)
            nz = t["height"] != 0
            hs += float(t["height"][nz].sum())
            hn += int(nz.sum())
        tp = pos[::-1].cumsum()[::-1]  # predicted changed: d >= edge k
        fp = neg[::-1].cumsum()[::-1]
        fn = pos.sum() - tp
        f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
        k = int(np.argmax(f1))
        return cls(threshold=k / bins - 1e-6, height=hs / max(hn, 1))
