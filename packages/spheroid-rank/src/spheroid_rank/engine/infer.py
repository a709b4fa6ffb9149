"""Batch embedding of in-memory tensors with an SSL method (no file reading or writing)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import Tensor

from spheroid_rank.models.ssl import SSLMethod


@torch.no_grad()
def embed_batches(model: SSLMethod, batches: Iterable[Tensor], device: str = "cpu") -> np.ndarray:
    """(N, D) float32 embeddings of a stream of (B, C, H, W) batches, in order."""
    model = model.to(device).eval()
    out = [model.embed(x.to(device, non_blocking=True)).float().cpu() for x in batches]
    if not out:
        return np.zeros((0, getattr(model, "dim", 0)), np.float32)
    return torch.cat(out).numpy().astype(np.float32)


def embed_tensor(
    model: SSLMethod, images: Tensor, batch_size: int = 128, device: str = "cpu"
) -> np.ndarray:
    """(N, D) embeddings of an (N, C, H, W) tensor of already normalised images."""
    return embed_batches(model, images.split(batch_size), device)
