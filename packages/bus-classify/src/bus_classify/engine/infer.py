"""Batched inference with optional test-time augmentation."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    dataset: Dataset,
    batch_size: int = 64,
    tta: bool = False,
    device: str = "cpu",
    num_workers: int = 0,
) -> np.ndarray:
    """Logits ``(N, C)``; with ``tta`` the logits of the image and its horizontal flip are averaged."""
    model = model.to(device).eval()
    out = []
    for x, _ in DataLoader(dataset, batch_size=batch_size, num_workers=num_workers):
        x = x.to(device)
        z = model(x).float()
        if tta:
            z = 0.5 * (z + model(torch.flip(x, dims=[3])).float())
        out.append(z.cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0))
