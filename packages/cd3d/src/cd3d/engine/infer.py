"""Batch inference on in-memory tensors (no raster I/O, so GPU benchmarks need no rasterio)."""

from __future__ import annotations

import torch
import torch.nn as nn


@torch.no_grad()
def infer(
    det: nn.Module,
    before: torch.Tensor,
    after: torch.Tensor,
    tta: bool | str = False,
    amp: bool = False,
    device: torch.device | str | None = None,
    channels_last: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Move a batch to ``device`` (default: the detector's), scale uint8 to [0, 1], and return
    ``det.predict``: change probability N×H×W and height N×⌈H/2⌉×⌈W/2⌉ in metres, on the device."""
    if device is None:
        p = next(iter(det.parameters()), None)
        device = p.device if p is not None else before.device
    device = torch.device(device)

    def prep(x: torch.Tensor) -> torch.Tensor:
        x = x.to(device, non_blocking=True)
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    return det.predict(prep(before), prep(after), tta=tta, amp=amp)
