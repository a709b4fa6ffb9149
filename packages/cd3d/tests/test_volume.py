"""Volume report on a hand-made 3D change raster."""

import json

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from cd3d.eval.volume import volume_report


def _write(path, arr, crs="EPSG:25830", res=1.0):
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=arr.shape[1],
        height=arr.shape[0],
        count=1,
        dtype="float32",
        crs=CRS.from_string(crs),
        transform=from_origin(1000, 2000, res, res),
        nodata=-9999.0,
    ) as dst:
        dst.write(arr.astype(np.float32), 1)


def test_regions_area_volume(tmp_path):
    a = np.zeros((10, 10), np.float32)
    a[1:3, 1:4] = 5.0  # 6 cells, +5 m
    a[6:9, 6:8] = -2.0  # 6 cells, -2 m
    a[6, 7] = -4.0
    a[0, 9] = 0.5  # below the 1 m threshold
    a[9, 0] = -9999.0  # nodata
    _write(tmp_path / "c3.tif", a, res=2.0)  # 4 m² per cell
    res = volume_report(tmp_path / "c3.tif", tmp_path / "r.geojson")
    regs = sorted(res["regions"], key=lambda r: r["volume_m3"])
    assert len(regs) == 2
    assert regs[0]["area_m2"] == pytest.approx(24.0)
    assert regs[0]["volume_m3"] == pytest.approx((5 * -2 - 4) * 4)
    assert regs[0]["max_dh_m"] == pytest.approx(-4.0)
    assert regs[1]["volume_m3"] == pytest.approx(6 * 5 * 4)
    assert regs[1]["mean_dh_m"] == pytest.approx(5.0)
    gj = json.loads((tmp_path / "r.geojson").read_text())
    assert len(gj["features"]) == 2
    xs = [c[0] for c in gj["features"][0]["geometry"]["coordinates"][0]]
    assert min(xs) >= 1000 and max(xs) <= 1020
    assert volume_report(tmp_path / "c3.tif", min_area=30)["summary"]["regions"] == 0


def test_geographic_crs_rejected(tmp_path):
    _write(tmp_path / "g.tif", np.ones((3, 3)), crs="EPSG:4326", res=0.001)
    with pytest.raises(ValueError, match="g.tif.*geographic"):
        volume_report(tmp_path / "g.tif")


def test_restrict_to_2d_change(tmp_path):
    a = np.zeros((4, 4), np.float32)
    a[0, 0] = 3.0
    a[3, 3] = -2.0
    _write(tmp_path / "c3.tif", a)
    p2 = np.zeros((1, 8, 8), np.uint8)
    p2[0, 1, 1] = 200  # covers 3D cell (0, 0) only
    with rasterio.open(
        tmp_path / "c2.tif",
        "w",
        driver="GTiff",
        width=8,
        height=8,
        count=1,
        dtype="uint8",
        crs="EPSG:25830",
        transform=from_origin(1000, 2000, 0.5, 0.5),
        nodata=255,
    ) as dst:
        dst.write(p2)
    res = volume_report(tmp_path / "c3.tif", change_2d=tmp_path / "c2.tif")
    assert [r["volume_m3"] for r in res["regions"]] == [3.0]
    assert volume_report(tmp_path / "c3.tif")["summary"]["regions"] == 2
