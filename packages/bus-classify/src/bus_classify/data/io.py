"""Readers (any PIL mode in, 8-bit RGB out), the package error, and the one atomic writer set.

Every file the package writes goes through :func:`atomic_path` (temp file in the same folder,
then ``os.replace``), so an interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, UnidentifiedImageError

MIN_SIDE = 32
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp"}


class BusClassifyError(ValueError):
    """Bad input or configuration; the message names the file or key."""


class ImageReadError(BusClassifyError):
    """An image could not be used; the message names the file and the problem."""


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path`` (same suffix, so writers infer the format); on success
    it replaces ``path``, on failure it is removed. Parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", **open_kw) -> Iterator[IO]:
    """``open`` a temp file that replaces ``path`` only when the block finishes without error."""
    with atomic_path(path) as tmp, open(tmp, mode, **open_kw) as f:
        yield f


def write_json(path: str | Path, obj, *, indent: int = 2) -> Path:
    """Atomic JSON write (numpy scalars become floats)."""
    with atomic_write(path) as f:
        json.dump(obj, f, indent=indent, default=float)
    return Path(path)


def write_csv(path: str | Path, rows_or_dataframe, fieldnames: list[str] | None = None) -> Path:
    """Atomic CSV write of a list of dicts (or a pandas DataFrame)."""
    if hasattr(rows_or_dataframe, "to_dict"):
        fieldnames = fieldnames or [str(c) for c in rows_or_dataframe.columns]
        rows = rows_or_dataframe.to_dict("records")
    else:
        rows = list(rows_or_dataframe)
    if fieldnames is None:
        if not rows:
            raise BusClassifyError(f"{path}: nothing to write (no rows and no column names)")
        fieldnames = list(rows[0].keys())
    with atomic_write(path, newline="") as f:
        w = csv.DictWriter(f, fieldnames=fieldnames)
        w.writeheader()
        w.writerows(rows)
    return Path(path)


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
        raise ImageReadError(
            f"{label}: cannot decode image ({e}); file truncated or corrupt?"
        ) from e
    w, h = img.size
    if min(w, h) < MIN_SIDE:
        raise ImageReadError(f"{label}: image is {w}x{h} px; each side must be >= {MIN_SIDE} px")
    try:
        return to_rgb(img)
    except Exception as e:
        raise ImageReadError(f"{label}: cannot convert mode {img.mode!r} to RGB ({e})") from e


def is_image_file(path: Path) -> bool:
    """True for a visible file with a known image suffix."""
    return (
        path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
    )
