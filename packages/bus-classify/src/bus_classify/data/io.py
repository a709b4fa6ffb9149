"""Robust image reading: any PIL mode in, 8-bit RGB out, with errors that name the file."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

MIN_SIDE = 32
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp"}


class ImageReadError(ValueError):
    """An image could not be used; the message names the file and the problem."""


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Min-max stretch a high-bit-depth or float array to uint8 (constant images become 0)."""
    arr = arr.astype(np.float64)
    finite = np.isfinite(arr)
    if not finite.any():
        return np.zeros(arr.shape, np.uint8)
    lo, hi = float(arr[finite].min()), float(arr[finite].max())
    arr = np.where(finite, arr, lo)
    if hi <= lo:
        return np.zeros(arr.shape, np.uint8)
    return np.clip(np.round((arr - lo) / (hi - lo) * 255.0), 0, 255).astype(np.uint8)


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB.

    Grayscale is replicated to three channels, 16-bit / 32-bit integer and float images are
    min-max stretched to 8 bits, alpha is composited onto black (ultrasound background), CMYK
    and palette images go through PIL's own conversion.
    """
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        gray = _to_uint8(np.asarray(img))
        return Image.fromarray(gray, "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def load_image(source: str | Path | bytes | Image.Image, name: str | None = None) -> Image.Image:
    """Open ``source`` (path, encoded bytes or PIL image) fully and return 8-bit RGB.

    Raises:
        ImageReadError: unreadable, truncated or corrupt file, or a side shorter than 32 px.
    """
    label = name or (str(source) if isinstance(source, (str, Path)) else "<image>")
    try:
        if isinstance(source, Image.Image):
            img = source
        elif isinstance(source, bytes):
            img = Image.open(io.BytesIO(source))
        else:
            img = Image.open(source)
        img.load()
    except FileNotFoundError as e:
        raise ImageReadError(f"{label}: file not found") from e
    except UnidentifiedImageError as e:
        raise ImageReadError(f"{label}: not a readable image (corrupt or unknown format)") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageReadError(f"{label}: cannot decode image ({e}); file truncated or corrupt?") from e
    w, h = img.size
    if min(w, h) < MIN_SIDE:
        raise ImageReadError(f"{label}: image is {w}x{h} px; each side must be >= {MIN_SIDE} px")
    try:
        return to_rgb(img)
    except Exception as e:
        raise ImageReadError(f"{label}: cannot convert mode {img.mode!r} to RGB ({e})") from e


def is_image_file(path: Path) -> bool:
    """True for a visible file with a known image suffix."""
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
