"""Readers and input checks, the package error class, and the one atomic writer set.

Every file the package writes goes through :func:`atomic_path` (a temp name in the same folder,
renamed on success and removed on failure), so an interrupted run never leaves half a file.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # rasterio is imported where a raster is read, so the CLI starts fast
    from rasterio.crs import CRS

# Anything with |value| above this in a 3D map is treated as a nodata sentinel (e.g. -FLT_MAX).
HEIGHT_SENTINEL = 1e4


class CD3DError(ValueError):
    """Bad input or configuration; the message names the file or key."""


class DataError(CD3DError):
    """A data file is missing, unreadable or has unexpected content; the message names the file."""


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path next to ``path`` (same suffix, so writers infer the format); on success
    it replaces ``path``, on failure it is removed. Parent folders are created."""
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
def atomic_write(path: str | Path, mode: str = "w", **open_kw: Any) -> Iterator[IO]:
    """``open`` a temp file inside :func:`atomic_path`; the target appears only when complete."""
    with atomic_path(path) as tmp, open(tmp, mode, **open_kw) as f:
        yield f


def _plain(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def write_json(path: str | Path, obj: Any, *, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON atomically; paths and numpy scalars become plain values."""
    with atomic_write(path) as f:
        json.dump(obj, f, indent=indent, default=_plain)
        f.write("\n")
    return Path(path)


def write_csv(
    path: str | Path,
    rows_or_dataframe: Iterable[Mapping] | Any,
    fieldnames: list[str] | None = None,
) -> Path:
    """Write dict rows (or a pandas DataFrame) as CSV atomically; columns default to the first row's keys."""
    if hasattr(rows_or_dataframe, "to_csv"):
        with atomic_write(path, newline="") as f:
            rows_or_dataframe.to_csv(f, index=False)
        return Path(path)
    rows = list(rows_or_dataframe)
    fields = fieldnames or (list(rows[0]) if rows else [])
    with atomic_write(path, newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return Path(path)


def read_raster(path: str | Path) -> tuple[np.ndarray, dict]:
    """Read all bands of ``path`` as a ``(bands, H, W)`` array plus its rasterio profile.

    Plain TIFFs without georeferencing are accepted (the profile then has ``crs=None``).
    Raises :class:`DataError` naming the file when it is missing, truncated or unreadable.
    """
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                arr = src.read()
                profile = dict(src.profile)
    except RasterioError as exc:
        raise DataError(f"{path}: cannot read raster ({exc})") from exc
    return arr, profile


def check_image(arr: np.ndarray, path: str | Path, bands: int = 3) -> np.ndarray:
    """Check an orthophoto is ``bands``-band uint8 and return it as float32 in [0, 1]."""
    if arr.ndim != 3 or arr.shape[0] != bands:
        raise DataError(
            f"{path}: expected {bands} bands, found {arr.shape[0] if arr.ndim == 3 else arr.ndim}"
        )
    if arr.dtype != np.uint8:
        raise DataError(
            f"{path}: expected uint8 orthophoto, found {arr.dtype} "
            "(rescale 16-bit imagery to 8 bits before training or prediction)"
        )
    return arr.astype(np.float32) / 255.0


def check_mask_2d(arr: np.ndarray, path: str | Path) -> np.ndarray:
    """Validate a 2D change map with values in {0,1} or {0,255}; return it as int64 {0,1}."""
    band = arr[0] if arr.ndim == 3 else arr
    values = np.unique(band)
    if np.isin(values, (0, 1)).all():
        return band.astype(np.int64)
    if np.isin(values, (0, 255)).all():
        return (band == 255).astype(np.int64)
    raise DataError(
        f"{path}: 2D change map must contain only {{0,1}} or {{0,255}}, found values "
        f"{values[:10].tolist()}"
    )


def check_height_3d(arr: np.ndarray, path: str | Path, nodata: float | None = None) -> np.ndarray:
    """Validate a 3D change map (metres); NaN, ±inf, ±FLT_MAX or the file's nodata are rejected."""
    band = (arr[0] if arr.ndim == 3 else arr).astype(np.float32)
    bad = ~np.isfinite(band) | (np.abs(band) > HEIGHT_SENTINEL)
    if nodata is not None and np.isfinite(nodata):
        bad |= band == np.float32(nodata)
    if bad.any():
        raise DataError(
            f"{path}: 3D change map has {int(bad.sum())} nodata/non-finite pixels "
            "(NaN, inf or a ±FLT_MAX sentinel); 3D targets must be finite metres"
        )
    return band


def _norm_crs(crs: CRS) -> dict:
    d = dict(crs.to_dict())
    d.pop("no_defs", None)
    d.pop("wktext", None)
    if d.get("datum") == "WGS84":  # the WGS84 datum is the WGS84 ellipsoid with no shift
        d.pop("datum")
        d["ellps"] = "WGS84"
    return d


def crs_equivalent(a: CRS | None, b: CRS | None) -> bool:
    """True when two CRSs are equal, or define the same projection, ellipsoid and units.

    This accepts the same UTM zone written once as EPSG:32618 and once as an unnamed WKT on the
    WGS 84 ellipsoid (``crs ==`` is False for those), and rejects different zones or datums.
    """
    if a is None or b is None:
        return a is None and b is None
    if a == b:
        return True
    try:
        return _norm_crs(a) == _norm_crs(b) and bool(_norm_crs(a))
    except Exception:  # CRSs that cannot be expressed as PROJ strings
        return False
