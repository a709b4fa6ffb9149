"""Opening input rasters for inference: band/dtype checks, co-registration checks, alignment."""

from __future__ import annotations

import warnings

import rasterio
from rasterio.enums import Resampling
from rasterio.io import DatasetReader
from rasterio.vrt import WarpedVRT

from ..data.io import CD3DError, crs_equivalent


class CoregistrationError(CD3DError):
    """The two epochs are not on the same grid (CRS, transform, shape or band count)."""


def check_input(src: DatasetReader, bands: int = 3) -> None:
    """Require ``bands`` uint8 bands; the message names the file."""
    if src.count != bands:
        raise CD3DError(f"{src.name}: expected {bands} bands, found {src.count}")
    if any(dt != "uint8" for dt in src.dtypes):
        raise CD3DError(
            f"{src.name}: expected uint8 bands, found {src.dtypes[0]} (rescale to 8 bits first)"
        )


def _same_transform(a, b) -> bool:
    tol = 1e-3 * max(abs(a.a), abs(a.e), 1e-12)
    return all(abs(x - y) <= tol for x, y in zip(tuple(a)[:6], tuple(b)[:6]))


def coregistration_problems(a: DatasetReader, b: DatasetReader) -> list[str]:
    """Differences between the grids of ``a`` and ``b``, each naming both values."""
    probs = []
    if not crs_equivalent(a.crs, b.crs):
        probs.append(
            f"CRS differs: {a.name} has {a.crs.to_string() if a.crs else None}, "
            f"{b.name} has {b.crs.to_string() if b.crs else None}"
        )
    if not _same_transform(a.transform, b.transform):
        probs.append(
            f"transform differs: {a.name} has {tuple(a.transform)[:6]}, "
            f"{b.name} has {tuple(b.transform)[:6]}"
        )
    if (a.height, a.width) != (b.height, b.width):
        probs.append(
            f"shape differs: {a.name} is {a.height}x{a.width}, {b.name} is {b.height}x{b.width}"
        )
    if a.count != b.count:
        probs.append(f"band count differs: {a.name} has {a.count}, {b.name} has {b.count}")
    return probs


def open_pair(before: str, after: str, align: bool = False, bands: int = 3):
    """Open both epochs, check them, and return ``(a, b)`` readers on the grid of ``a``.

    Two inputs without a CRS (plain PNG/JPEG/TIFF tiles) are accepted as pixel grids. Without
    ``align`` any grid difference raises :class:`CoregistrationError`. With ``align``
    the second epoch is warped (bilinear) onto the first one's grid through a WarpedVRT, read
    window by window. A CRS written differently but with identical parameters is accepted (with a
    warning); outputs take the CRS of ``before``.
    """
    a = rasterio.open(before)
    b = rasterio.open(after)
    try:
        check_input(a, bands)
        check_input(b, bands)
        probs = coregistration_problems(a, b)
        if probs and not align:
            raise CoregistrationError(
                "inputs are not co-registered (use --align to warp the second "
                "onto the first): " + "; ".join(probs)
            )
        if probs:
            if b.crs is None:
                raise CoregistrationError(f"{b.name}: no CRS; cannot align it")
            vrt = WarpedVRT(
                b,
                crs=a.crs,
                transform=a.transform,
                width=a.width,
                height=a.height,
                resampling=Resampling.bilinear,
                nodata=b.nodata if b.nodata is not None else 0,
                src_nodata=b.nodata,
            )
            return a, vrt
        if a.crs != b.crs:
            warnings.warn(
                f"{b.name}: CRS is written differently from {a.name} but defines the same "
                "projection; using the CRS of the first image",
                stacklevel=2,
            )
        return a, b
    except Exception:
        a.close()
        b.close()
        raise
