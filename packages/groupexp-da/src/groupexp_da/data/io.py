"""Readers, the package error class and the one atomic writer set (no torch / mmdet3d import)."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import pickle
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np


class GroupExpError(ValueError):
    """Bad input or configuration; the message names the file or key."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds.

    The temp name keeps the suffix (``.name.PID.tmp.png``) so writers that infer the format
    from it (matplotlib, torch.save) still work. Parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kw) -> Iterator[IO]:
    """``open(path, mode)`` that leaves either the old file or the complete new one."""
    with atomic_path(path) as tmp, open(tmp, mode, **open_kw) as f:
        yield f


def write_json(path: str | os.PathLike, obj: Any, *, indent: int = 2) -> Path:
    with atomic_write(path) as f:
        json.dump(obj, f, indent=indent)
        f.write("\n")
    return Path(path)


def write_csv(
    path: str | os.PathLike, rows_or_dataframe: Any, fieldnames: Sequence[str] | None = None
) -> Path:
    """Rows (list of dicts) or a pandas DataFrame as CSV."""
    if hasattr(rows_or_dataframe, "to_csv"):
        with atomic_path(path) as tmp:
            rows_or_dataframe.to_csv(tmp, index=False)
        return Path(path)
    rows = list(rows_or_dataframe)
    names = list(fieldnames or (rows[0].keys() if rows else []))
    with atomic_write(path, newline="") as f:
        w = csv.DictWriter(f, fieldnames=names)
        w.writeheader()
        w.writerows(rows)
    return Path(path)


def write_pickle(path: str | os.PathLike, obj: Any) -> Path:
    with atomic_write(path, "wb") as f:
        pickle.dump(obj, f)
    return Path(path)


def load_infos(path: str | os.PathLike, what: str = "info pkl") -> dict:
    """An mmdet3d v2 info file (``{'metainfo', 'data_list'}``), with errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise GroupExpError(f"{path}: {what} not found")
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise GroupExpError(f"{path}: not a readable {what} ({type(exc).__name__})") from None
    if not isinstance(data, dict) or "data_list" not in data:
        kind = type(data).__name__
        raise GroupExpError(
            f"{path}: not an mmdet3d v2 {what} (a {kind} without 'data_list'; "
            "old-format list pkls need `groupexp-da convert`)"
        )
    return data


def read_points(path: str, num_feats: int, nan: str = "drop") -> np.ndarray:
    """Read a float32 ``.bin`` point file with clear errors for bad frames."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"point file referenced by the info pkl is missing: {path}")
    raw = np.fromfile(path, dtype=np.float32)
    if raw.size == 0:
        raise ValueError(f"{path}: empty point cloud")
    if raw.size % num_feats != 0:
        raise ValueError(
            f"{path}: {raw.size} floats is not a multiple of the declared point dimension "
            f"{num_feats} (wrong load_dim / num_pts_feats for this file?)"
        )
    pts = raw.reshape(-1, num_feats)
    bad = ~np.isfinite(pts[:, :3]).all(1)
    if bad.any():
        if nan == "raise":
            raise ValueError(f"{path}: {int(bad.sum())} points with NaN/inf coordinates")
        warnings.warn(f"{path}: dropping {int(bad.sum())} NaN/inf points", stacklevel=2)
        pts = pts[~bad]
        if len(pts) == 0:
            raise ValueError(f"{path}: no finite points left")
    return pts
