"""Resize (letterbox or stretch), ImageNet z-score, two augmentation levels: light (flip +
small affine) and the report's (plus speckle noise and blur), and two optional training-only
additions: a random resized crop (``crop_scale``) and brightness / contrast / gamma jitter
(``intensity``). A training pipeline also takes ``(image, mask)``: geometry moves a
:class:`~torchvision.tv_tensors.Mask` with the image (nearest neighbour), the intensity
operations leave it alone."""

from __future__ import annotations

import torch
from PIL import Image, ImageFilter
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from bus_classify.data.io import BusClassifyError
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


class RandomGamma(torch.nn.Module):
    """``x ** g`` on a [0, 1] tensor with ``g`` drawn uniformly from ``gamma`` (a gain-curve
    change of the scanner; 0 and 1 stay fixed)."""

    def __init__(self, gamma: tuple[float, float] = (0.7, 1.3)) -> None:
        super().__init__()
        self.gamma = gamma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = self.gamma
        return x.clamp(0.0, 1.0) ** (lo + float(torch.rand(())) * (hi - lo))


class ImageOnly:
    """Apply ``op`` to the image (first input) and pass a mask that follows it unchanged."""

    def __init__(self, op) -> None:
        self.op = op

    def __call__(self, img, *rest):
        return (self.op(img), *rest) if rest else self.op(img)

    def __repr__(self) -> str:
        return f"ImageOnly({self.op!r})"


class Letterbox:
    """Resize the longer side to ``size`` keeping the aspect ratio, then pad to a square
    (black, like the ultrasound background) so lesion shape is not distorted. A mask passed
    after the image gets the same geometry (nearest neighbour)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, img: Image.Image, *masks: tv_tensors.Mask):
        w, h = img.size
        scale = self.size / max(w, h)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        left, top = (self.size - nw) // 2, (self.size - nh) // 2
        canvas = Image.new(img.mode, (self.size, self.size))
        canvas.paste(
            img.resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=None), (left, top)
        )
        if not masks:
            return canvas
        pad = [left, top, self.size - nw - left, self.size - nh - top]
        exact = v2.InterpolationMode.NEAREST_EXACT  # pixel-centre aligned, like the image
        boxed = [F.pad(F.resize(m, [nh, nw], interpolation=exact), pad) for m in masks]
        return canvas, *boxed


AUGMENTATIONS = ("none", "light", "report")
RESIZE_MODES = ("letterbox", "stretch")


def augment_level(augment: bool | str) -> str:
    """``none`` | ``light`` (flip + small affine) | ``report`` (the report's flip, affine,
    speckle noise and blur); ``True``/``False`` mean ``report``/``none``."""
    level = {True: "report", False: "none"}.get(augment, augment)
    if level not in AUGMENTATIONS:
        raise BusClassifyError(f"unknown augment {augment!r}; use one of {AUGMENTATIONS}")
    return level


def resize_op(img_size: int, resize: str = "letterbox"):
    """The deterministic resize step shared by training, evaluation and masks."""
    if resize == "letterbox":
        return Letterbox(img_size)
    if resize == "stretch":
        return v2.Resize((img_size, img_size), antialias=True)
    raise BusClassifyError(f"unknown resize {resize!r}; use one of {RESIZE_MODES}")


def check_extras(crop_scale: float | None, intensity: float) -> None:
    """``crop_scale`` in (0, 1] or None, ``intensity`` in [0, 1)."""
    if crop_scale is not None and not 0.0 < crop_scale <= 1.0:
        raise BusClassifyError(f"crop_scale must be in (0, 1] or null (off), got {crop_scale}")
    if not 0.0 <= intensity < 1.0:
        raise BusClassifyError(f"intensity must be in [0, 1) (0 = off), got {intensity}")


def build_transform(
    img_size: int = 224,
    train: bool = False,
    parula: bool = False,
    augment: bool | str = "light",
    resize: str = "stretch",
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    crop_scale: float | None = None,
    intensity: float = 0.0,
) -> v2.Compose:
    """PIL RGB -> normalised float tensor ``(3, img_size, img_size)``; called with
    ``(image, mask)`` it returns the mask moved by the same geometry.

    ``train`` enables the augmentation ``augment`` (see :func:`augment_level`) and the two
    extras: ``crop_scale`` = s crops a random window covering a share s to 1 of the
    resized square's area (aspect 3/4-4/3) and scales it back to ``img_size``; ``intensity`` = i multiplies brightness
    and contrast by factors in [1 - i, 1 + i] and applies a gamma in [1 - i, 1 + i].
    """
    check_extras(crop_scale, intensity)
    # Geometry and blur run on PIL images (much faster than tensor kernels on small CPUs).
    level = augment_level(augment) if train else "none"
    ops: list = [ImageOnly(Parula())] if parula else []
    ops.append(resize_op(img_size, resize))
    if train and crop_scale is not None and crop_scale < 1.0:
        ops.append(v2.RandomResizedCrop(img_size, scale=(crop_scale, 1.0), antialias=True))
    if train and intensity > 0:
        ops.append(v2.ColorJitter(brightness=intensity, contrast=intensity))
    if level != "none":
        ops += [
            v2.RandomHorizontalFlip(),
            v2.RandomAffine(degrees=10, translate=(0.05, 0.05), scale=(0.9, 1.1)),
        ]
    if level == "report":
        ops.append(ImageOnly(RandomGaussianBlur((0.1, 1.5), p=0.3)))
    ops += [v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True)]
    if train and intensity > 0:
        ops.append(ImageOnly(RandomGamma((1.0 - intensity, 1.0 + intensity))))
    if level == "report":
        ops.append(ImageOnly(MultiplicativeNoise(0.1, p=0.5)))
    ops.append(v2.Normalize(mean, std))
    return v2.Compose(ops)
