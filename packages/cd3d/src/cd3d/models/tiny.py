"""A per-pixel model: exactly translation-equivariant, used to test tiled inference."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .registry import register_model


@register_model("pixel_mlp")
class PixelMLP(nn.Module):
    """1×1 convolutions on the stacked epochs; the 3D head averages 2×2 blocks.

    Every output depends only on the input pixels it covers, so predicting a raster
    tile by tile must equal predicting it whole (given even tile offsets).
    """

    def __init__(self, in_channels: int = 3, hidden: int = 16, classes: int = 2) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(2 * in_channels, hidden, 1),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 1),
            nn.ReLU(),
        )
        self.head_2d = nn.Conv2d(hidden, classes, 1)
        self.head_3d = nn.Conv2d(hidden, 1, 1)

    def forward(
        self, before: torch.Tensor, after: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(logits_2d, height)``; height is the 2×2 mean (ceil mode) of a per-pixel map."""
        f = self.body(torch.cat([before, after], 1))
        h = F.avg_pool2d(self.head_3d(f), 2, ceil_mode=True)
        return self.head_2d(f), h
