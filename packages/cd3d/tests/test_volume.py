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


def _square(x0, y0, side):
    return {"type": "Polygon", "coordinates": [[(x0, y0), (x0 + side, y0), (x0 + side, y0 - side),
                                                (x0, y0 - side), (x0, y0)]]}  # fmt: skip


def _footprints(path, geoms, props, crs="EPSG:25830"):
    import pyogrio
    import shapely

    wkb = np.array([shapely.to_wkb(shapely.geometry.shape(g)) for g in geoms], dtype=object)
    names = list(props[0])
    cols = [np.array([p[n] for p in props]) for n in names]
    pyogrio.raw.write(path, wkb, cols, names, crs=crs, geometry_type="Polygon",
                      driver="GPKG" if str(path).endswith(".gpkg") else "GeoJSON")  # fmt: skip
    return path


def _change(tmp_path):
    a = np.zeros(
        (10, 10), np.float32
    )  # 2 m cells, origin (1000, 2000): cell (r, c) centre (1001 + 2c, 1999 - 2r)
    a[1:3, 1:4] = 5.0  # building A: 6 cells raised 5 m
    a[6:9, 6:8] = -2.0  # building B: 6 cells lowered 2 m, one of them 4 m
    a[6, 7] = -4.0
    a[5, 5] = 0.5  # inside B's footprint but below the 1 m threshold
    a[8, 7] = -9999.0  # nodata inside B
    _write(tmp_path / "c3.tif", a, res=2.0)
    return tmp_path / "c3.tif"


def test_footprint_volumes_by_hand(tmp_path, capsys):
    from cd3d.cli import main
    from cd3d.eval.volume import footprint_report

    c3 = _change(tmp_path)
    # A covers rows 0-3, cols 0-4 (its 6 raised cells and 14 unchanged ones); B covers rows 5-8, cols 5-7
    geoms = [_square(1000, 2000, 8), _square(1010, 1990, 6)]
    geoms[0]["coordinates"][0] = [
        (1000, 2000),
        (1010, 2000),
        (1010, 1992),
        (1000, 1992),
        (1000, 2000),
    ]
    geoms[1]["coordinates"][0] = [
        (1010, 1990),
        (1016, 1990),
        (1016, 1982),
        (1010, 1982),
        (1010, 1990),
    ]
    far = _square(5000, 5000, 4)  # nowhere near the raster: counted and skipped
    fp = _footprints(tmp_path / "b.gpkg", [*geoms, far], [{"id": 7, "use": "house"}, {"id": 8, "use": "shop"},
                                                          {"id": 9, "use": "far"}])  # fmt: skip
    res = footprint_report(c3, fp, tmp_path / "b.geojson")
    a, b = res["buildings"]
    assert a["id"] == 7 and a["use"] == "house" and a["cells"] == 20 and a["area_m2"] == 80.0
    assert a["footprint_area_m2"] == 80.0 and a["volume_m3"] == 6 * 5 * 4 and a["mean_dh_m"] == 1.5
    assert a["max_dh_m"] == 5.0 and a["changed_fraction"] == 0.3
    # B: 12 cells, one nodata -> 11; dH: four x (-2), one -4, one 0.5, five 0 -> sum -11.5, 5 changed
    assert (
        b["id"] == 8
        and b["cells"] == 11
        and b["area_m2"] == 44.0
        and b["footprint_area_m2"] == 48.0
    )
    assert b["volume_m3"] == pytest.approx(-11.5 * 4) and b["max_dh_m"] == -4.0
    assert b["changed_fraction"] == pytest.approx(5 / 11, abs=1e-4)
    assert res["summary"]["skipped"] == 1 and res["summary"]["skipped_ids"] == [9]
    gj = json.loads((tmp_path / "b.geojson").read_text())
    assert [f["properties"]["id"] for f in gj["features"]] == [7, 8]
    assert (tmp_path / "b.csv").read_text().splitlines()[0].startswith("id,use,cells,area_m2")
    # the same footprints in WGS 84 (a GeoJSON's default CRS) are reprojected onto the raster
    from rasterio.warp import transform_geom

    wgs = [transform_geom("EPSG:25830", "EPSG:4326", g, precision=-1) for g in geoms]
    fp84 = _footprints(tmp_path / "b84.geojson", wgs, [{"id": 7, "use": "house"}, {"id": 8, "use": "shop"}],
                       crs="EPSG:4326")  # fmt: skip
    r84 = footprint_report(c3, fp84)
    assert [r["cells"] for r in r84["buildings"]] == [20, 11]
    assert [r["volume_m3"] for r in r84["buildings"]] == [a["volume_m3"], b["volume_m3"]]
    assert r84["buildings"][0]["footprint_area_m2"] == pytest.approx(80.0, rel=1e-6)
    # the CLI prints the summary and the largest buildings
    assert (
        main(
            [
                "volume",
                "--change-3d",
                str(c3),
                "--footprints",
                str(fp),
                "--out",
                str(tmp_path / "o.geojson"),
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["footprints"] == 2 and out["largest"][0]["id"] == 7


def test_footprint_bad_inputs(tmp_path, capsys):
    from cd3d.cli import main

    c3 = _change(tmp_path)
    nocrs = _footprints(tmp_path / "nocrs.gpkg", [_square(1000, 2000, 8)], [{"id": 1}], crs=None)
    far = _footprints(tmp_path / "far.gpkg", [_square(5000, 5000, 4)], [{"id": 1}])
    (tmp_path / "junk.geojson").write_text("{not json")
    for fp, msg in ((nocrs, "nocrs.gpkg: footprint file has no CRS"), (far, "far.gpkg: no footprint overlaps"),
                    (tmp_path / "junk.geojson", "junk.geojson: cannot read footprints"),
                    (tmp_path / "none.gpkg", "none.gpkg: footprint file not found")):  # fmt: skip
        with pytest.raises(SystemExit) as e:
            main(
                [
                    "volume",
                    "--change-3d",
                    str(c3),
                    "--footprints",
                    str(fp),
                    "--out",
                    str(tmp_path / "o.geojson"),
                ]
            )
        err = capsys.readouterr().err.strip().splitlines()
        assert (
            e.value.code == 2
            and len(err) == 1
            and err[0].startswith("cd3d: error: ")
            and msg in err[0]
        ), err
    assert not (tmp_path / "o.geojson").exists()
