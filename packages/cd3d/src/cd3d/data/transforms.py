"""Paired augmentations: one random geometry for both epochs and both targets, colour per epoch."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


class PairedAugment:
    """Random flips, 90° rotations and a small affine shared by ``before``, ``after``, ``mask``
    and ``height`` (the 3D map may be at a coarser grid: the affine is expressed in normalised
    coordinates so it maps both grids alike), then brightness/contrast/saturation jitter drawn
    independently for each epoch.
    """

    def __init__(
        self,
        flip: bool = True,
        rot90: bool = True,
        affine_deg: float = 10.0,
        affine_scale: tuple[float, float] = (0.9, 1.1),
        affine_translate: float = 0.05,
        affine_p: float = 0.5,
        jitter: float = 0.15,
        generator: torch.Generator | None = None,
    ) -> None:
        self.flip, self.rot90 = flip, rot90
        self.affine_deg, self.affine_scale = affine_deg, affine_scale
        self.affine_translate, self.affine_p = affine_translate, affine_p
        self.jitter = jitter
        self.g = generator

    def _rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.g)

    def __call__(self, item: dict) -> dict:
        keys = ("before", "after", "mask", "height")  # height is absent in 2D-only data
        x = {k: item[k] for k in keys if k in item}
        if self.flip and self._rand(1) < 0.5:
            x = {k: v.flip(-1) for k, v in x.items()}
        if self.flip and self._rand(1) < 0.5:
            x = {k: v.flip(-2) for k, v in x.items()}
        if self.rot90:
            k90 = int(self._rand(1) * 4) % 4
            if k90:
                x = {k: torch.rot90(v, k90, dims=(-2, -1)) for k, v in x.items()}
        if self.affine_p > 0 and self._rand(1) < self.affine_p:
            x = self._affine(x)
        if self.jitter > 0:
            x["before"] = self._colour(x["before"])
            x["after"] = self._colour(x["after"])
        out = dict(item)
        out.update(x)
        return out

    def _affine(self, x: dict) -> dict:
        r = self._rand(4)
        ang = math.radians((2 * r[0].item() - 1) * self.affine_deg)
        lo, hi = self.affine_scale
        s = lo + (hi - lo) * r[1].item()
        tx, ty = ((2 * r[2:] - 1) * self.affine_translate * 2).tolist()
        c, si = math.cos(ang) / s, math.sin(ang) / s
        theta = torch.tensor([[[c, -si, tx], [si, c, ty]]], dtype=torch.float32)

        def warp(v: torch.Tensor, mode: str) -> torch.Tensor:
            v4 = v.reshape(1, -1, *v.shape[-2:]).float()
            grid = F.affine_grid(theta, list(v4.shape), align_corners=False)
            w = F.grid_sample(v4, grid, mode=mode, padding_mode="zeros", align_corners=False)
            return w.reshape(v.shape).to(v.dtype)

        return {
            k: warp(v, "bilinear" if k in ("before", "after") else "nearest") for k, v in x.items()
        }

    def _colour(self, img: torch.Tensor) -> torch.Tensor:
        j = self.jitter
        r = (2 * self._rand(3) - 1) * j
        img = img * (1 + r[0])
        mean = img.mean()
        img = (img - mean) * (1 + r[1]) + mean
        grey = img.mean(0, keepdim=True)
        img = (img - grey) * (1 + r[2]) + grey
        return img.clamp(0, 1)
