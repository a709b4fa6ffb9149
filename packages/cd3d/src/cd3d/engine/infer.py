"""Batch inference on in-memory tensors (no raster I/O, so GPU benchmarks need no rasterio)."""

from __future__ import annotations

import torch

from ..models.wrapper import ChangeDetector


@torch.no_grad()
def infer(det: ChangeDetector, before: torch.Tensor, after: torch.Tensor, tta: bool = False,
          amp: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Change probability N×H×W and height N×h×w (metres) for [0, 1] image batches.

    Odd sizes are padded to even by edge replication so the half-resolution grid stays aligned.
    ``tta`` averages the identity and three flips.
    """
    h, w = before.shape[-2:]
    ph, pw = h % 2, w % 2
    if ph or pw:
        before = torch.nn.functional.pad(before, (0, pw, 0, ph), mode="replicate")
        after = torch.nn.functional.pad(after, (0, pw, 0, ph), mode="replicate")
    flips = [(), (-1,), (-2,), (-2, -1)] if tta else [()]
    p_sum = h_sum = 0
    for f in flips:
        b, a = (before.flip(f), after.flip(f)) if f else (before, after)
        with torch.autocast(before.device.type, dtype=torch.bfloat16, enabled=amp):
            logits, hh = det(b, a)
        p = logits.float().softmax(1)[:, 1]
        hh = hh.float()[:, 0]
        if f:
            p, hh = p.flip([d + 1 for d in f]), hh.flip([d + 1 for d in f])
        p_sum, h_sum = p_sum + p, h_sum + hh
    n = len(flips)
    return (p_sum / n)[:, :h, :w], (h_sum / n)[:, : (h + 1) // 2, : (w + 1) // 2]
