"""Connected regions of elevation change with area, mean/max dH and volume, as GeoJSON."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.features import shapes
from scipy import ndimage

from ..data.io import CD3DError, write_json


def volume_report(
    change_3d: str | Path,
    out: str | Path | None = None,
    min_height: float = 1.0,
    min_area: float = 0.0,
    change_2d: str | Path | None = None,
) -> dict:
    """Label 8-connected cells with |dH| ≥ ``min_height`` (nodata excluded) in a 3D change raster.

    Per region: ``area_m2`` (cells × pixel area), ``mean_dh_m``, ``max_dh_m`` (largest |dH|, with
    its sign), ``volume_m3`` (Σ dH × pixel area: positive = material added). Pixel size comes from
    the transform; CRS units must be linear (metres or feet, converted to metres). With
    ``change_2d`` (the ``change_2d.tif`` of the same prediction) only cells whose 2D change
    probability is ≥ 0.5 in any of their 2×2 pixels count.
    """
    path = Path(change_3d)
    if not path.is_file():
        raise CD3DError(f"{path}: file not found")
    with rasterio.open(path) as src:
        if src.count != 1:
            raise CD3DError(
                f"{path}: expected a single-band 3D change raster, found {src.count} bands"
            )
        dh = src.read(1).astype(np.float64)
        valid = src.read_masks(1) > 0
        tr, crs = src.transform, src.crs
    if crs is not None and crs.is_geographic:
        raise CD3DError(f"{path}: CRS {crs.to_string()} is geographic; areas need a projected CRS")
    unit = 1.0
    if crs is not None:
        name, factor = crs.units_factor
        unit = float(factor) if factor else 1.0
    pix_area = abs(tr.a * tr.e - tr.b * tr.d) * unit * unit
    valid &= np.isfinite(dh)
    if change_2d is not None:
        with rasterio.open(change_2d) as c2:
            p = c2.read(1)
            nd = c2.nodata if c2.nodata is not None else -1
            ok = p[p != nd]
            thr = 1 if ok.size == 0 or ok.max() <= 1 else 127  # mask mode 0/1, else round(p·254)
            hit = (p >= thr) & (p != nd)
        h, w = dh.shape
        pad = np.zeros((2 * h, 2 * w), bool)
        pad[: hit.shape[0], : hit.shape[1]] = hit[: 2 * h, : 2 * w]
        valid &= pad.reshape(h, 2, w, 2).any((1, 3))
    changed = valid & (np.abs(dh) >= min_height)
    labels, n = ndimage.label(changed, structure=np.ones((3, 3), int))
    idx = np.arange(1, n + 1)
    count = ndimage.sum_labels(np.ones_like(dh), labels, idx)
    total = ndimage.sum_labels(dh, labels, idx)
    hi = ndimage.maximum(dh, labels, idx) if n else np.array([])
    lo = ndimage.minimum(dh, labels, idx) if n else np.array([])
    props = {}
    for i in range(n):
        area = float(count[i]) * pix_area
        if area < min_area:
            continue
        mx = float(hi[i]) if abs(hi[i]) >= abs(lo[i]) else float(lo[i])
        props[i + 1] = {
            "id": i + 1,
            "area_m2": round(area, 3),
            "mean_dh_m": round(float(total[i] / count[i]), 3),
            "max_dh_m": round(mx, 3),
            "volume_m3": round(float(total[i]) * pix_area, 3),
            "cells": int(count[i]),
        }
    feats = []
    for geom, val in shapes(labels.astype(np.int32), mask=labels > 0, transform=tr, connectivity=8):
        if int(val) in props:
            feats.append({"type": "Feature", "geometry": geom, "properties": props[int(val)]})
    fc = {
        "type": "FeatureCollection",
        "name": path.stem,
        "crs": {"type": "name", "properties": {"name": crs.to_string() if crs else None}},
        "features": feats,
    }
    summary = {
        "regions": len(props),
        "pixel_area_m2": pix_area,
        "total_area_m2": round(sum(p["area_m2"] for p in props.values()), 3),
        "net_volume_m3": round(sum(p["volume_m3"] for p in props.values()), 3),
    }
    if out is not None:
        write_json(out, fc, indent=None)
    return {"summary": summary, "regions": list(props.values()), "geojson": fc}
