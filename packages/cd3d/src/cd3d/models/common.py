"""Pieces shared by the change-detection networks: padding, fusion and the 2D/3D heads."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

FUSIONS = ("diff", "absdiff", "concat")


def fuse(a: torch.Tensor, b: torch.Tensor, mode: str) -> torch.Tensor:
    """Fuse the features of the two epochs: ``b - a``, ``|b - a|`` or channel concatenation."""
    if mode == "diff":
        return b - a
    if mode == "absdiff":
        return (b - a).abs()
    if mode == "concat":
        return torch.cat([a, b], 1)
    raise ValueError(f"unknown fusion {mode!r}; choose from {FUSIONS}")


def pad_to_multiple(x: torch.Tensor, m: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad bottom/right to a multiple of ``m`` (reflect when possible); return padded and (H, W)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


class Heads(nn.Module):
    """2D change logits at the input grid and a 3D regression at the half-resolution grid.

    The 3D head reduces the full-resolution decoder features with a stride-2 convolution, so a
    400² tile yields a 200² height map that lines up with the 1 m 3D CD map (each output cell
    covers exactly a 2×2 block of orthophoto pixels).
    """

    def __init__(self, in_ch: int, classes: int = 2, mid: int | None = None) -> None:
        super().__init__()
        mid = mid or max(in_ch, 16)
        self.head_2d = nn.Conv2d(in_ch, classes, 3, padding=1)
        self.head_3d = nn.Sequential(
            nn.Conv2d(in_ch, mid, 3, stride=2, padding=1),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, 1, 3, padding=1),
        )
        # start from the "no elevation change" solution: the regression begins at 0 m everywhere
        nn.init.zeros_(self.head_3d[-1].weight)
        nn.init.zeros_(self.head_3d[-1].bias)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = size
        return self.head_2d(x)[..., :h, :w], self.head_3d(x)[..., : (h + 1) // 2, : (w + 1) // 2]


def load_encoder_weights(encoder: nn.Module, path: str | Path | None) -> None:
    """Load local encoder weights (a state dict saved with ``torch.save``); nothing is downloaded."""
    if path is None:
        return
    state = torch.load(path, map_location="cpu", weights_only=True)
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    if len(missing) == len(encoder.state_dict()):
        raise ValueError(f"{path}: no parameter matches the encoder (unexpected: {unexpected[:5]})")
