"""Resize, ImageNet z-score and the report's augmentations (flip, affine, speckle noise, blur)."""

from __future__ import annotations

import torch
from PIL import Image, ImageFilter
from torchvision.transforms import v2

from bus_classify.data.parula import Parula

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class MultiplicativeNoise(torch.nn.Module):
    """Speckle-like noise: ``x * U(1 - s, 1 + s)`` per pixel, applied with probability ``p``."""

    def __init__(self, strength: float = 0.1, p: float = 0.5) -> None:
        super().__init__()
        self.strength, self.p = strength, p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.rand(()) >= self.p:
            return x
        noise = 1.0 + (torch.rand_like(x[:1]) * 2 - 1) * self.strength
        return (x * noise).clamp(0.0, 1.0)


class RandomGaussianBlur:
    """PIL Gaussian blur with sigma drawn from ``sigma``, applied with probability ``p``."""

    def __init__(self, sigma: tuple[float, float] = (0.1, 1.5), p: float = 0.3) -> None:
        self.sigma, self.p = sigma, p

    def __call__(self, img: Image.Image) -> Image.Image:
        if torch.rand(()) >= self.p:
            return img
        lo, hi = self.sigma
        return img.filter(ImageFilter.GaussianBlur(lo + float(torch.rand(())) * (hi - lo)))


def build_transform(
    img_size: int = 224,
    train: bool = False,
    parula: bool = False,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
) -> v2.Compose:
    """PIL RGB -> normalised float tensor ``(3, img_size, img_size)``."""
    # Geometry and blur run on PIL images (much faster than tensor kernels on small CPUs).
    ops: list = [Parula()] if parula else []
    ops.append(v2.Resize((img_size, img_size), antialias=True))
    if train:
        ops += [
            v2.RandomHorizontalFlip(),
            v2.RandomAffine(degrees=10, translate=(0.05, 0.05), scale=(0.9, 1.1)),
            RandomGaussianBlur((0.1, 1.5), p=0.3),
        ]
    ops += [v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True)]
    if train:
        ops.append(MultiplicativeNoise(0.1, p=0.5))
    ops.append(v2.Normalize(mean, std))
    return v2.Compose(ops)
