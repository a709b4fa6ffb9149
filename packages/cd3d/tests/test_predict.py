"""Georeferenced tiled inference: round trips, stitching equivalence, nodata, co-registration."""

import os

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import Affine

from cd3d.engine.georef import CoregistrationError
from cd3d.engine.predict import (
    NODATA_2D,
    NODATA_3D,
    PredictConfig,
    positions,
    predict_rasters,
    ramp,
)
from cd3d.models import ChangeDetector


@pytest.fixture
def det():
    torch.manual_seed(0)
    return ChangeDetector("pixel_mlp", {"hidden": 8}, height_scale=10.0).eval()


def _write(path, arr, transform, crs="EPSG:25830", nodata=None, dtype="uint8"):
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=arr.shape[2],
        height=arr.shape[1],
        count=arr.shape[0],
        dtype=dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
    ) as dst:
        dst.write(arr.astype(dtype))
    return path


def _pair(tmp_path, h=150, w=130, seed=0):
    rng = np.random.default_rng(seed)
    tr = Affine(0.5, 0, 355000, 0, -0.5, 4612000)
    a = rng.integers(1, 256, (3, h, w))
    b = rng.integers(1, 256, (3, h, w))
    return _write(tmp_path / "a.tif", a, tr), _write(tmp_path / "b.tif", b, tr), tr


def _read(p):
    with rasterio.open(p) as src:
        return src.read(1), src.profile


def test_positions_and_ramp():
    assert positions(100, 400, 336) == [(0, 100)]
    ps = positions(1000, 400, 336)
    assert ps[0] == (0, 400) and ps[-1][0] + ps[-1][1] == 1000 and all(s % 2 == 0 for s, _ in ps)
    assert positions(1001, 400, 336)[-1] == (600, 401)
    r = ramp(10, 4)
    assert r[0] == pytest.approx(0.125) and r[5] == 1.0 and (r > 0).all()


def test_georef_round_trip_and_outputs(tmp_path, det):
    a, b, tr = _pair(tmp_path)
    paths = predict_rasters(
        det, a, b, tmp_path / "out", PredictConfig(tile=64, overlap=16), progress=False
    )
    c2, p2 = _read(paths["change_2d"])
    c3, p3 = _read(paths["change_3d"])
    assert p2["crs"].to_epsg() == 25830 and p2["transform"] == tr and c2.shape == (150, 130)
    assert (
        p3["transform"] == tr @ Affine.scale(2)
        and p3["transform"].a == 1.0
        and c3.shape == (75, 65)
    )
    assert (
        p2["dtype"] == "uint8"
        and p2["nodata"] == NODATA_2D
        and p2["tiled"]
        and p2["compress"] == "deflate"
    )
    assert p3["dtype"] == "float32" and p3["nodata"] == NODATA_3D
    assert c2.max() <= 254 and sorted(f.name for f in (tmp_path / "out").iterdir()) == [
        "change_2d.tif",
        "change_3d.tif",
    ]
    m = predict_rasters(
        det,
        a,
        b,
        tmp_path / "m",
        PredictConfig(tile=64, overlap=16, output_2d="mask"),
        progress=False,
    )
    cm, _ = _read(m["change_2d"])
    np.testing.assert_array_equal(cm, (c2 >= 127).astype(np.uint8))


def test_tiled_equals_whole_on_real_raster(tmp_path, det, raster_dir):
    """Stitching: RGB.byte.tif tile by tile == whole, and == predicting its windows rgb1..4."""
    src = raster_dir / "RGB.byte.tif"
    with rasterio.open(src) as s:
        arr, prof = s.read(), s.profile
    after = _write(
        tmp_path / "after.tif", 255 - arr[::-1], prof["transform"], prof["crs"], nodata=0
    )
    whole = predict_rasters(
        det, src, after, tmp_path / "whole", PredictConfig(tile=800, overlap=0), progress=False
    )
    tiled = predict_rasters(
        det, src, after, tmp_path / "tiled", PredictConfig(tile=160, overlap=32), progress=False
    )
    for k in ("change_2d", "change_3d"):
        w, pw = _read(whole[k])
        t, pt = _read(tiled[k])
        assert pw["transform"] == pt["transform"]
        np.testing.assert_allclose(t, w, atol=1e-4 if k == "change_3d" else 0)
    w2, _ = _read(whole["change_2d"])
    assert (w2 == NODATA_2D).mean() > 0.2  # nodata 0 in the Landsat scene is carried over
    w3, _ = _read(whole["change_3d"])
    for name in ("rgb1", "rgb2", "rgb3", "rgb4"):
        with rasterio.open(raster_dir / f"{name}.tif") as s:
            win = arr_win = s.read()
            tr = s.transform
        row, col = (~prof["transform"]) * (tr.c, tr.f)
        row, col = round(col), round(row)
        flip = _write(
            tmp_path / f"{name}_after.tif",
            255 - arr[::-1][:, row : row + arr_win.shape[1], col : col + arr_win.shape[2]],
            tr,
            prof["crs"],
            nodata=0,
        )
        one = predict_rasters(
            det,
            raster_dir / f"{name}.tif",
            flip,
            tmp_path / name,
            PredictConfig(tile=512),
            progress=False,
        )
        o2, p2 = _read(one["change_2d"])
        assert p2["transform"] == tr
        np.testing.assert_array_equal(o2, w2[row : row + win.shape[1], col : col + win.shape[2]])
        if row % 2 == 0 and col % 2 == 0:  # the 1 m grid of an odd window is shifted by half a cell
            o3, _ = _read(one["change_3d"])
            np.testing.assert_allclose(
                o3,
                w3[row // 2 : row // 2 + o3.shape[0], col // 2 : col // 2 + o3.shape[1]],
                atol=1e-4,
            )


def test_crs_written_differently_is_accepted(tmp_path, det, raster_dir):
    a, b = raster_dir / "RGB.byte.tif", raster_dir / "RGB2.byte.tif"
    with pytest.warns(UserWarning, match="CRS is written differently"):
        paths = predict_rasters(
            det, a, b, tmp_path / "o", PredictConfig(tile=400, overlap=0), progress=False
        )
    c2, p2 = _read(paths["change_2d"])
    assert p2["crs"].to_epsg() == 32618
    with rasterio.open(b) as s:  # RGB2's sidecar .msk mask is honoured as nodata
        assert ((c2 == NODATA_2D) == (s.read_masks(1) == 0)).mean() > 0.99


def test_nodata_propagates(tmp_path, det):
    a, b, tr = _pair(tmp_path, 64, 64)
    with rasterio.open(b) as s:
        arr = s.read()
    arr[:, 10:13, 20:23] = 0
    b = _write(tmp_path / "bn.tif", arr, tr, nodata=0)
    paths = predict_rasters(
        det, a, b, tmp_path / "o", PredictConfig(tile=32, overlap=8), progress=False
    )
    c2, _ = _read(paths["change_2d"])
    c3, _ = _read(paths["change_3d"])
    assert (c2 == NODATA_2D).sum() == 9 and (c2[10:13, 20:23] == NODATA_2D).all()
    assert (c3 == NODATA_3D).sum() == 4 and (c3[5:7, 10:12] == NODATA_3D).all()


def test_coregistration_errors_and_align(tmp_path, det):
    a, b, tr = _pair(tmp_path, 64, 64)
    with rasterio.open(b) as s:
        arr = s.read()
    shifted = _write(tmp_path / "shift.tif", arr, tr @ Affine.translation(4, 0))
    with pytest.raises(CoregistrationError, match="transform differs.*355000.0.*355002.0"):
        predict_rasters(det, a, shifted, tmp_path / "x", progress=False)
    other = _write(tmp_path / "crs.tif", arr, tr, crs="EPSG:25831")
    with pytest.raises(CoregistrationError, match="EPSG:25830.*EPSG:25831"):
        predict_rasters(det, a, other, tmp_path / "x", progress=False)
    small = _write(tmp_path / "small.tif", arr[:, :32], tr)
    with pytest.raises(CoregistrationError, match="64x64.*32x64"):
        predict_rasters(det, a, small, tmp_path / "x", progress=False)
    u16 = _write(tmp_path / "u16.tif", arr, tr, dtype="uint16")
    with pytest.raises(ValueError, match="u16.tif.*uint16"):
        predict_rasters(det, a, u16, tmp_path / "x", progress=False)
    two = _write(tmp_path / "two.tif", arr[:2], tr)
    with pytest.raises(ValueError, match="two.tif.*3 bands"):
        predict_rasters(det, a, two, tmp_path / "x", progress=False)
    assert not (tmp_path / "x" / "change_2d.tif").exists()
    # --align: the shifted copy is warped back; pixels it does not cover become nodata
    paths = predict_rasters(
        det,
        a,
        shifted,
        tmp_path / "al",
        PredictConfig(tile=32, overlap=8),
        align=True,
        progress=False,
    )
    c2, p2 = _read(paths["change_2d"])
    assert (
        p2["transform"] == tr and (c2[:, :4] == NODATA_2D).all() and (c2[:, 8:] != NODATA_2D).all()
    )


def test_atomic_write_leaves_no_partial_file(tmp_path, det, monkeypatch):
    a, b, _ = _pair(tmp_path, 64, 64)
    import cd3d.engine.predict as P

    def boom(*args, **kw):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(P, "infer", boom)
    with pytest.raises(RuntimeError):
        predict_rasters(
            det, a, b, tmp_path / "o", PredictConfig(tile=32, overlap=8), progress=False
        )
    assert os.listdir(tmp_path / "o") == []
