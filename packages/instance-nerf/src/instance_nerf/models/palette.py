"""Fixed colour palette for instance ids (id 0 = background is dark grey)."""

from __future__ import annotations

import torch
from torch import Tensor


def palette(n: int = 256) -> Tensor:
    """(n, 3) float colours in [0, 1], deterministic and well separated for small ids."""
    g = torch.Generator().manual_seed(7)
    cols = torch.rand(n, 3, generator=g) * 0.7 + 0.3
    base = torch.tensor(
        [
            [0.25, 0.25, 0.25],
            [0.90, 0.30, 0.25],
            [0.25, 0.65, 0.90],
            [0.35, 0.80, 0.35],
            [0.95, 0.75, 0.20],
            [0.70, 0.40, 0.85],
            [0.20, 0.85, 0.80],
            [0.95, 0.55, 0.75],
        ]
    )
    cols[: len(base)] = base[:n]
    return cols


_PALETTE = palette()


def colorize(ids: Tensor) -> Tensor:
    """Map integer ids (...,) to colours (..., 3); ids < 0 (ignored) are black."""
    pal = _PALETTE.to(ids.device)
    out = pal[ids.clamp(0, len(pal) - 1) % len(pal)]
    return torch.where((ids < 0)[..., None], torch.zeros_like(out), out)
