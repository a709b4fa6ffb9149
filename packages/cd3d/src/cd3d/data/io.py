"""Raster reading with rasterio and the input checks shared by datasets and inference."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

# Anything with |value| above this in a 3D map is treated as a nodata sentinel (e.g. -FLT_MAX).
HEIGHT_SENTINEL = 1e4


class DataError(ValueError):
    """A data file is missing, unreadable or has unexpected content; the message names the file."""


def read_raster(path: str | Path) -> tuple[np.ndarray, dict]:
    """Read all bands of ``path`` as a ``(bands, H, W)`` array plus its rasterio profile.

    Plain TIFFs without georeferencing are accepted (the profile then has ``crs=None``).
    Raises :class:`DataError` naming the file when it is missing, truncated or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                arr = src.read()
                profile = dict(src.profile)
    except (RasterioIOError, rasterio.errors.RasterioError) as exc:
        raise DataError(f"{path}: cannot read raster ({exc})") from exc
    return arr, profile


def check_image(arr: np.ndarray, path: str | Path, bands: int = 3) -> np.ndarray:
    """Check an orthophoto is ``bands``-band uint8 and return it as float32 in [0, 1]."""
    if arr.ndim != 3 or arr.shape[0] != bands:
        raise DataError(f"{path}: expected {bands} bands, found {arr.shape[0] if arr.ndim == 3 else arr.ndim}")
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
