"""Readers, the package error class and the one atomic writer set every writer in the package uses."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image


class InstanceNerfError(ValueError):
    """Bad input or configuration; the message names the file or key."""


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path`` (suffix kept); move it onto ``path`` on success, delete it on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", **open_kw: Any) -> Iterator[IO]:
    """``open`` a temp file beside ``path``; it replaces ``path`` only when the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, mode, **open_kw) as f:
        yield f


def write_json(path: str | Path, obj: Any, *, indent: int = 2) -> Path:
    """Write ``obj`` as JSON atomically and return the path."""
    with atomic_write(path) as f:
        json.dump(obj, f, indent=indent)
    return Path(path)


def write_csv(
    path: str | Path, rows_or_dataframe: Any, fieldnames: Sequence[str] | None = None
) -> Path:
    """Write a list of dicts (or a pandas DataFrame) as CSV atomically and return the path."""
    if hasattr(rows_or_dataframe, "to_csv"):
        with atomic_path(path) as tmp:
            rows_or_dataframe.to_csv(tmp, index=False)
        return Path(path)
    rows = list(rows_or_dataframe)
    names = list(fieldnames) if fieldnames else (list(rows[0]) if rows else [])
    with atomic_write(path, newline="") as f:
        writer = csv.DictWriter(f, fieldnames=names)
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)


def save_npz(path: str | Path, **arrays: np.ndarray) -> Path:
    """``np.savez_compressed`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)
    return Path(path)


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; a missing or malformed file raises :class:`InstanceNerfError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise InstanceNerfError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InstanceNerfError(f"{path}: not valid JSON ({exc})") from exc


def read_npy(path: str | Path) -> np.ndarray:
    """Load a ``.npy`` array without pickle; anything else raises :class:`InstanceNerfError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InstanceNerfError(f"{path}: file not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InstanceNerfError(f"{path}: not a .npy array file") from exc
    if not isinstance(arr, np.ndarray):
        raise InstanceNerfError(f"{path}: holds several arrays (.npz), expected one .npy array")
    return arr


def read_npz(path: str | Path, required: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` (no pickle) and check the ``required`` keys."""
    path = Path(path)
    if not path.is_file():
        raise InstanceNerfError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise InstanceNerfError(f"{path}: not an .npz archive")
            data = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InstanceNerfError(f"{path}: not an .npz archive") from exc
    missing = [k for k in required if k not in data]
    if missing:
        raise InstanceNerfError(f"{path}: missing array(s) {', '.join(missing)}")
    return data


IGNORE_8BIT = 255
IGNORE_16BIT = 65535


def load_instance_mask(path: Path, ignore_value: int | None = None) -> np.ndarray:
    """Read a single-channel id PNG as int64 (H, W) with the ignore value mapped to -1."""
    with Image.open(path) as im:
        if im.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
            raise ValueError(
                f"{path}: instance mask must be single-channel 8/16-bit, got mode {im.mode}"
            )
        arr = np.array(im).astype(np.int64)
        bits16 = im.mode.startswith("I")
    ignore = ignore_value if ignore_value is not None else (IGNORE_16BIT if bits16 else IGNORE_8BIT)
    arr[arr == ignore] = -1
    return arr


def save_instance_mask(path: Path, ids: np.ndarray) -> None:
    """Write ids (H, W) as 8-bit PNG (16-bit if any id >= 255); -1 becomes the ignore value."""
    ids = np.asarray(ids)
    if ids.max(initial=0) >= IGNORE_8BIT:
        img = Image.fromarray(np.where(ids < 0, IGNORE_16BIT, ids).astype(np.uint16))
    else:
        img = Image.fromarray(np.where(ids < 0, IGNORE_8BIT, ids).astype(np.uint8), mode="L")
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
