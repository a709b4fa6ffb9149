"""Image reading: 8/16-bit grayscale or RGB TIFF/PNG/JPEG, optional 3-plane focal stacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image
from scipy import ndimage

FOCAL_MODES = ("sharpest", "channels", "mean")


class ImageReadError(ValueError):
    """An image file could not be read or has an unsupported layout."""


def focus_measure(plane: np.ndarray) -> float:
    """Variance of the Laplacian: larger means sharper."""
    return float(ndimage.laplace(plane.astype(np.float64)).var())


def _to_float(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if np.issubdtype(arr.dtype, np.floating):
        a = arr.astype(np.float32)
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        if lo >= 0.0 and hi <= 1.0:
            return np.nan_to_num(a)
        return np.nan_to_num((a - lo) / max(hi - lo, 1e-12))
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        return (arr.astype(np.float64) - info.min).astype(np.float32) / float(info.max - info.min)
    raise ImageReadError(f"{path}: unsupported pixel type {arr.dtype}")


def _rgb_to_gray(a: np.ndarray) -> np.ndarray:
    return (0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]).astype(np.float32)


def load_raw(path: str | Path) -> np.ndarray:
    """Pixels of ``path`` as stored (no scaling); raises ImageReadError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: file does not exist")
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            return np.asarray(tifffile.imread(path))
        with Image.open(path) as im:
            if im.mode in ("P", "PA", "LA", "RGBA", "CMYK", "YCbCr"):
                im = im.convert("RGB")
            return np.asarray(im)
    except ImageReadError:
        raise
    except Exception as exc:
        raise ImageReadError(f"{path}: cannot read image ({exc.__class__.__name__}: {exc})") from exc


def bit_depth(path: str | Path) -> str:
    """Stored pixel type of an image (e.g. ``uint8``), read from the header where possible."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            with tifffile.TiffFile(path) as tf:
                return str(tf.pages[0].dtype)
        with Image.open(path) as im:
            return {"I;16": "uint16", "I;16B": "uint16", "I": "int32", "F": "float32"}.get(
                im.mode, "uint8"
            )
    except Exception as exc:
        raise ImageReadError(f"{path}: cannot read image header ({exc})") from exc


def read_image(path: str | Path, focal: str = "sharpest") -> np.ndarray:
    """Read an image as float32 in [0, 1].

    Returns (H, W) for grayscale/RGB input and for focal stacks with ``focal`` in
    {"sharpest", "mean"}; (3, H, W) for a focal stack with ``focal="channels"``.
    A focal stack is a TIFF whose first axis has 2-5 planes (Z, H, W); RGB(A) images
    (H, W, 3|4) are converted to luminance.
    """
    if focal not in FOCAL_MODES:
        raise ValueError(f"focal must be one of {FOCAL_MODES}, got {focal!r}")
    path = Path(path)
    arr = load_raw(path)
    arr = np.squeeze(arr)
    if arr.ndim == 2:
        img = _to_float(arr, path)
        return np.stack([img] * 3) if focal == "channels" else img
    if arr.ndim == 3 and arr.shape[-1] in (3, 4) and arr.shape[0] > 5:
        return _rgb_to_gray(_to_float(arr[..., :3], path))
    if arr.ndim == 3 and 2 <= arr.shape[0] <= 5:
        stack = _to_float(arr, path)
        if focal == "channels":
            if stack.shape[0] != 3:
                idx = np.linspace(0, stack.shape[0] - 1, 3).round().astype(int)
                stack = stack[idx]
            return stack
        if focal == "mean":
            return stack.mean(0)
        return stack[int(np.argmax([focus_measure(p) for p in stack]))]
    raise ImageReadError(f"{path}: unsupported image shape {arr.shape} (expected HxW, HxWx3 or ZxHxW)")


def save_gray(path: str | Path, img: np.ndarray, bits: int = 8) -> None:
    """Write a [0, 1] grayscale image as 8- or 16-bit PNG/TIFF (temp file + rename)."""
    path = Path(path)
    a = np.clip(img, 0, 1)
    arr = (a * 255).round().astype(np.uint8) if bits == 8 else (a * 65535).round().astype(np.uint16)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    if path.suffix.lower() in (".tif", ".tiff"):
        tifffile.imwrite(tmp, arr)
    else:
        Image.fromarray(arr).save(tmp)
    tmp.replace(path)
