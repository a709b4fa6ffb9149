"""File I/O: image and embedding readers, the package error class, and the atomic writers.

Images are 8/16-bit grayscale or RGB TIFF/PNG/JPEG, optionally 3-plane focal stacks. Every
file the package writes goes through :func:`atomic_path` (temp file in the same folder,
then ``os.replace``), so an interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import tifffile
from PIL import Image
from scipy import ndimage

if TYPE_CHECKING:
    import pandas as pd

FOCAL_MODES = ("sharpest", "channels", "mean")


class SpheroidRankError(ValueError):
    """Bad input or configuration; the message names the file or key."""


class ImageReadError(SpheroidRankError):
    """An image file could not be read or has an unsupported layout."""


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only on success.

    The temporary name keeps the suffix (``.name.<pid>.tmp.png``) so writers that infer the
    format from it (PIL, tifffile, matplotlib, torch) still work. Parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", **open_kw: Any) -> Iterator[IO]:
    """``open()`` a temporary file that replaces ``path`` when the block succeeds."""
    if "b" not in mode:
        open_kw.setdefault("encoding", "utf-8")
        if "newline" not in open_kw and mode.startswith("w"):
            open_kw["newline"] = ""
    with atomic_path(path) as tmp, open(tmp, mode, **open_kw) as fh:
        yield fh


def write_json(path: str | Path, obj: Any, *, indent: int = 2) -> Path:
    """Write ``obj`` as JSON atomically; returns ``path``."""
    with atomic_write(path) as fh:
        json.dump(obj, fh, indent=indent)
        fh.write("\n")
    return Path(path)


def write_csv(
    path: str | Path,
    rows_or_dataframe: pd.DataFrame | Sequence[dict],
    fieldnames: Sequence[str] | None = None,
) -> Path:
    """Write a DataFrame (without its index) or a list of dicts as CSV atomically."""
    with atomic_write(path) as fh:
        if hasattr(rows_or_dataframe, "to_csv"):
            df = rows_or_dataframe if fieldnames is None else rows_or_dataframe[list(fieldnames)]
            df.to_csv(fh, index=False)
        else:
            rows = list(rows_or_dataframe)
            names = list(fieldnames or (rows[0].keys() if rows else []))
            writer = csv.DictWriter(fh, fieldnames=names)
            writer.writeheader()
            writer.writerows(rows)
    return Path(path)


def read_embeddings(path: str | Path) -> tuple[pd.DataFrame, np.ndarray]:
    """Metadata and (N, D) embeddings from a CSV written by ``embed`` (columns ``e0..eN``)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise SpheroidRankError(f"{path}: embeddings file does not exist")
    try:
        df = pd.read_csv(
            path, dtype={"plate": str, "drug": str, "concentration": str}, keep_default_na=False
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SpheroidRankError(f"{path}: not a CSV file ({exc.__class__.__name__})") from exc
    ecols = [c for c in df.columns if c.startswith("e") and c[1:].isdigit()]
    if not ecols:
        raise SpheroidRankError(f"{path}: no embedding columns e0..eN")
    return df.drop(columns=ecols), df[ecols].to_numpy(np.float32)


def read_table(path: str | Path, what: str = "table") -> pd.DataFrame:
    """A CSV table with ``plate`` kept as text; errors name the file."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise SpheroidRankError(f"{path}: {what} file does not exist")
    try:
        return pd.read_csv(path, dtype={"plate": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SpheroidRankError(f"{path}: not a CSV {what} ({exc.__class__.__name__})") from exc


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
        raise ImageReadError(
            f"{path}: cannot read image ({exc.__class__.__name__}: {exc})"
        ) from exc


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
    raise ImageReadError(
        f"{path}: unsupported image shape {arr.shape} (expected HxW, HxWx3 or ZxHxW)"
    )


def save_gray(path: str | Path, img: np.ndarray, bits: int = 8) -> None:
    """Write a [0, 1] grayscale image (H, W), or a (Z, H, W) focal stack as TIFF, with 8 or
    16 bits, atomically."""
    a = np.clip(img, 0, 1)
    arr = (a * 255).round().astype(np.uint8) if bits == 8 else (a * 65535).round().astype(np.uint16)
    with atomic_path(path) as tmp:
        if tmp.suffix.lower() in (".tif", ".tiff"):
            tifffile.imwrite(tmp, arr)
        else:
            Image.fromarray(arr).save(tmp)


def save_rgb(path: str | Path, rgb: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 image atomically (PNG/JPEG by suffix)."""
    with atomic_path(path) as tmp:
        Image.fromarray(rgb).save(tmp)
