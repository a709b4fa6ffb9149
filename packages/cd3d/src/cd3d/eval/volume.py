"""Volume reports from a 3D change raster: connected changed regions, or per building footprint."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.features import shapes
from rasterio.transform import Affine
from scipy import ndimage

from ..data.io import CD3DError, write_csv, write_json

log = logging.getLogger(__name__)


def _raster_meta(
    path: Path,
) -> tuple[Affine, CRS | None, float, float, float | None, tuple[int, int]]:
    """Transform, CRS, cell area (m²), the CRS's metres per unit, nodata and shape of a 3D change raster."""
    if not path.is_file():
        raise CD3DError(f"{path}: file not found")
    with rasterio.open(path) as src:
        if src.count != 1:
            raise CD3DError(
                f"{path}: expected a single-band 3D change raster, found {src.count} bands"
            )
        tr, crs, nodata, shape = src.transform, src.crs, src.nodata, src.shape
    if crs is not None and crs.is_geographic:
        raise CD3DError(f"{path}: CRS {crs.to_string()} is geographic; areas need a projected CRS")
    unit = 1.0
    if crs is not None:
        _, factor = crs.units_factor
        unit = float(factor) if factor else 1.0
    return tr, crs, abs(tr.a * tr.e - tr.b * tr.d) * unit * unit, unit, nodata, shape


def _read_change(path: Path) -> tuple[np.ndarray, np.ndarray, Affine, CRS | None, float]:
    """dH (float64), valid cells, transform, CRS and cell area (m²)."""
    tr, crs, pix_area, _, _, _ = _raster_meta(path)
    with rasterio.open(path) as src:
        dh = src.read(1).astype(np.float64)
        valid = src.read_masks(1) > 0
    return dh, valid & np.isfinite(dh), tr, crs, pix_area


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
    dh, valid, tr, crs, pix_area = _read_change(path)
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


STAT_KEYS = (
    "cells",
    "area_m2",
    "footprint_area_m2",
    "mean_dh_m",
    "max_dh_m",
    "volume_m3",
    "changed_fraction",
)


def read_footprints(path: str | Path) -> tuple[list[dict], object]:
    """Footprint polygons of a GeoJSON / GeoPackage / any OGR file as GeoJSON-like features, and its CRS.

    Raises :class:`CD3DError` naming the file when it is missing, unreadable or has no CRS.
    """
    import pyogrio
    import shapely

    path = Path(path)
    if not path.is_file():
        raise CD3DError(f"{path}: footprint file not found")
    try:
        meta, fids, wkb, fields = pyogrio.raw.read(path, return_fids=True)
    except Exception as exc:  # pyogrio raises its own DataSourceError / DataLayerError types
        raise CD3DError(f"{path}: cannot read footprints ({str(exc).splitlines()[0]})") from exc
    if not meta.get("crs"):
        raise CD3DError(
            f"{path}: footprint file has no CRS; assign one (e.g. ogr2ogr -a_srs EPSG:25830)"
        )
    names = list(meta["fields"])
    feats = []
    for i, geom in enumerate(shapely.from_wkb(wkb)):
        if geom is None or geom.is_empty:
            continue
        props = {n: _plain(col[i]) for n, col in zip(names, fields)}
        feats.append({"type": "Feature", "id": int(fids[i]), "geometry": shapely.geometry.mapping(geom),
                      "properties": props})  # fmt: skip
    return feats, meta["crs"]


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def footprint_report(
    change_3d: str | Path,
    footprints: str | Path,
    out: str | Path | None = None,
    min_height: float = 1.0,
    id_field: str | None = None,
) -> dict:
    """Height change and volume per footprint polygon, by zonal statistics (``rasterstats``).

    Footprints in another CRS are reprojected to the raster's. A cell belongs to a footprint when
    its centre lies inside the polygon (rasterstats' default rasterisation); nodata cells are left
    out. Per footprint: its id (``id_field``, else an ``id`` attribute, else the feature id) and all
    its attributes, ``cells``, ``area_m2`` (valid cells × cell area), ``footprint_area_m2``
    (polygon area), ``mean_dh_m``, ``max_dh_m`` (largest |dH| with its sign), ``volume_m3``
    (Σ dH × cell area) and ``changed_fraction`` (share of its cells with |dH| ≥ ``min_height``).
    Footprints that cover no valid cell are skipped, counted and named in ``summary.skipped``.
    With ``out`` writes a GeoJSON (raster CRS) and a CSV with the same rows beside it.
    """
    import shapely
    from rasterio.warp import transform_geom
    from rasterstats import zonal_stats

    path, fp = Path(change_3d), Path(footprints)
    tr, crs, pix_area, unit, nodata, shape = _raster_meta(path)
    feats, fcrs = read_footprints(fp)
    if crs is None:
        raise CD3DError(f"{path}: raster has no CRS; footprints cannot be placed on it")
    if not feats:
        raise CD3DError(f"{fp}: no footprint polygons")
    src_crs = rasterio.crs.CRS.from_user_input(fcrs)
    if src_crs != crs:
        for f in feats:
            f["geometry"] = transform_geom(src_crs, crs, f["geometry"])

    def changed(x: np.ma.MaskedArray) -> float:
        v = x.compressed()
        return float((np.abs(v) >= min_height).sum()) / max(v.size, 1)

    stats = zonal_stats(feats, str(path), nodata=nodata, stats=["count", "mean", "min", "max", "sum"],
                        add_stats={"changed": changed})  # fmt: skip
    rows, out_feats, skipped = [], [], []
    for f, p in zip(feats, stats):
        fid = f["properties"].get(id_field) if id_field else f["properties"].get("id", f["id"])
        if not p["count"]:
            skipped.append(fid)
            continue
        mx = p["max"] if abs(p["max"]) >= abs(p["min"]) else p["min"]
        st = {"cells": int(p["count"]), "area_m2": round(p["count"] * pix_area, 3),
              "footprint_area_m2": round(shapely.geometry.shape(f["geometry"]).area * unit * unit, 3),
              "mean_dh_m": round(float(p["mean"]), 3), "max_dh_m": round(float(mx), 3),
              "volume_m3": round(float(p["sum"]) * pix_area, 3), "changed_fraction": round(p["changed"], 4)}  # fmt: skip
        row = {"id": fid, **f["properties"], **st}
        rows.append(row)
        out_feats.append({"type": "Feature", "geometry": f["geometry"], "properties": row})
    if not rows:
        b = rasterio.transform.array_bounds(*shape, tr)
        raise CD3DError(f"{fp}: no footprint overlaps the valid cells of {path} (raster bounds {tuple(round(v, 1) for v in b)} in {crs.to_string()})")  # fmt: skip
    if skipped:
        log.warning("%s: skipped %d footprint(s) outside the valid cells of %s: %s", fp, len(skipped), path,
                    ", ".join(map(str, skipped[:20])))  # fmt: skip
    summary = {"footprints": len(rows), "skipped": len(skipped), "skipped_ids": skipped,
               "pixel_area_m2": pix_area, "net_volume_m3": round(sum(r["volume_m3"] for r in rows), 3),
               "footprint_crs": src_crs.to_string(), "raster_crs": crs.to_string()}  # fmt: skip
    fc = {"type": "FeatureCollection", "name": fp.stem,
          "crs": {"type": "name", "properties": {"name": crs.to_string()}}, "features": out_feats}  # fmt: skip
    if out is not None:
        out = Path(out)
        write_json(out, fc, indent=None)
        write_csv(
            out.with_suffix(".csv"),
            rows,
            fieldnames=list(dict.fromkeys(k for r in rows for k in r)),
        )
    return {"summary": summary, "buildings": rows, "geojson": fc}
