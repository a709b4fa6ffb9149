"""Grayscale-correct augmentations for bright-field microscopy.

Images are float tensors (C, H, W) in [0, 1] with C = 1 (grayscale) or 3 (focal planes).
No hue/saturation jitter: only geometry, blur, brightness/contrast and noise, and a
Normalize with exactly C means/stds (a 3-value Normalize on one channel would only work
by broadcasting accident).
"""

from __future__ import annotations

import torch
from lightly.transforms.multi_view_transform import MultiViewTransform
from torch import Tensor, nn
from torchvision.transforms import v2

MEAN, STD = 0.5, 0.25


class RandomRot90(nn.Module):
    """Rotate by a random multiple of 90 degrees (lossless; spheroids have no up)."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.rot90(x, int(torch.randint(0, 4, ())), dims=(-2, -1))


class BrightnessContrast(nn.Module):
    """Random gain/offset per image, channel-count agnostic: x' = (x - m) * c + m * b."""

    def __init__(self, brightness: float = 0.2, contrast: float = 0.2, p: float = 0.8) -> None:
        super().__init__()
        self.brightness, self.contrast, self.p = brightness, contrast, p

    def forward(self, x: Tensor) -> Tensor:
        if torch.rand(()) > self.p:
            return x
        b = 1 + (torch.rand(()) * 2 - 1) * self.brightness
        c = 1 + (torch.rand(()) * 2 - 1) * self.contrast
        m = x.mean()
        return ((x - m) * c + m * b).clamp(0, 1)


class GaussianNoise(nn.Module):
    """Additive Gaussian noise with a random standard deviation up to ``sigma``."""

    def __init__(self, sigma: float = 0.02, p: float = 0.5) -> None:
        super().__init__()
        self.sigma, self.p = sigma, p

    def forward(self, x: Tensor) -> Tensor:
        if torch.rand(()) > self.p:
            return x
        return (x + torch.randn_like(x) * self.sigma * torch.rand(())).clamp(0, 1)


def normalize(channels: int) -> v2.Normalize:
    """Normalize with one mean/std per channel."""
    return v2.Normalize(mean=[MEAN] * channels, std=[STD] * channels)


def ssl_view(size: int, channels: int = 1, min_scale: float = 0.5) -> v2.Compose:
    """One strong SSL view: crop, flips, 90-degree rotations, blur, brightness/contrast, noise."""
    return v2.Compose(
        [
            v2.RandomResizedCrop(size, scale=(min_scale, 1.0), ratio=(0.8, 1.25), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomVerticalFlip(),
            RandomRot90(),
            v2.RandomApply([v2.GaussianBlur(5, sigma=(0.1, 1.5))], p=0.5),
            BrightnessContrast(0.25, 0.25),
            GaussianNoise(0.03),
            normalize(channels),
        ]
    )


def ssl_transform(
    size: int, channels: int = 1, n_views: int = 2, min_scale: float = 0.5
) -> MultiViewTransform:
    """lightly MultiViewTransform producing ``n_views`` independent strong views."""
    return MultiViewTransform([ssl_view(size, channels, min_scale) for _ in range(n_views)])


def weak_transform(size: int, channels: int = 1) -> v2.Compose:
    """Weaker augmentations for the supervised baseline (crop scale 0.8-1, flips, blur)."""
    return v2.Compose(
        [
            v2.RandomResizedCrop(size, scale=(0.8, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomVerticalFlip(),
            v2.RandomApply([v2.GaussianBlur(5, sigma=(0.1, 1.0))], p=0.3),
            normalize(channels),
        ]
    )


def eval_transform(size: int, channels: int = 1) -> v2.Compose:
    """Deterministic transform for embedding extraction."""
    return v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size), normalize(channels)])
