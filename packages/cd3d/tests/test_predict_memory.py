"""Device memory of tiled predict does not grow with the raster: fixed batches, bounded buffers."""

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import Affine

import cd3d.engine.predict as P
from cd3d.engine.predict import PredictConfig, norm_weights, plan_tiles, predict_rasters
from cd3d.models import ChangeDetector


def _pair(tmp_path, h, w, seed=0):
    rng = np.random.default_rng(seed)
    paths = []
    for k in "ab":
        arr = rng.integers(1, 256, (3, h, w), dtype=np.uint8)
        prof = dict(driver="GTiff", width=w, height=h, count=3, dtype="uint8", crs="EPSG:25830",
                    transform=Affine(0.5, 0, 355000, 0, -0.5, 4612000))  # fmt: skip
        with rasterio.open(tmp_path / f"{k}{w}.tif", "w", **prof) as dst:
            dst.write(arr)
        paths.append(tmp_path / f"{k}{w}.tif")
    return paths


def test_normalised_weights_sum_to_one():
    w = norm_weights([0, 48, 96, 104], 64, 168, 16)
    total = np.zeros(168)
    for s, row in zip([0, 48, 96, 104], w):
        total[s : s + 64] += row
    np.testing.assert_allclose(total, 1.0, rtol=1e-6)
    assert w[0, 0] > 0.99 and w[0, 56] < w[0, 40]  # edges own their pixels; overlaps taper


@pytest.mark.parametrize("batch", [5, 32])
def test_plan_batch_and_buffers_independent_of_width(batch):
    cfg = PredictConfig(tile=400, overlap=64, batch_size=batch)
    small, large = plan_tiles(4096, 4096, cfg), plan_tiles(4096, 16384, cfg)
    assert large.windows > 3.9 * small.windows
    for p in (small, large):  # every batch is full except the last one
        sizes = [k1 - k0 for k0, k1 in p.batches]
        assert set(sizes[:-1]) <= {batch} and 0 < sizes[-1] <= batch
    bs, bl = small.device_buffers(), large.device_buffers()
    for name in ("before", "after", "weighted_2d", "weighted_3d"):
        assert bs[name] == bl[name]
        assert bs[name][0] == batch and bs[name][-2:] in ((400, 400), (200, 200))
    # the rolling accumulator holds one batch's span of rows: ≤ batch·stride² + tile·width pixels
    for p in (small, large):
        rows, width = p.device_buffers()["acc_2d"]
        assert rows <= (-(-batch // len(p.xs)) + 1) * 336 + 400 - 336
        assert rows * width <= batch * 336 * 336 + 2 * 400 * p.width
    odd = plan_tiles(1001, 999, cfg)  # odd sizes are padded to even: one window shape
    assert (odd.height, odd.width, odd.th, odd.tw) == (1002, 1000, 400, 400)


def test_model_sees_fixed_batches_at_any_width(tmp_path, monkeypatch):
    """Batches span rows of windows, so a wide and a narrow raster run the same batch shape."""
    seen: dict[int, list] = {}
    real = P.infer

    def recording(det, before, after, *args):
        seen[width].append(tuple(before.shape))
        return real(det, before, after, *args)

    monkeypatch.setattr(P, "infer", recording)
    torch.manual_seed(0)
    det = ChangeDetector("pixel_mlp", {"hidden": 8}).eval()
    cfg = PredictConfig(tile=32, overlap=8, batch_size=5)
    for width in (70, 310):
        seen[width] = []
        a, b = _pair(tmp_path, 96, width)
        predict_rasters(det, a, b, tmp_path / f"o{width}", cfg, progress=False)
        assert set(seen[width][:-1]) == {(5, 3, 32, 32)} and seen[width][-1][0] <= 5
        n = plan_tiles(96, width, cfg).windows
        assert sum(s[0] for s in seen[width]) == n  # each window exactly once


def test_batch_size_does_not_change_a_spatial_model(tmp_path):
    """A conv net (receptive field across pixels): batches of 1 and of 7 (spanning rows of
    windows) give the same blended maps."""
    torch.manual_seed(0)
    kw = {"encoder_name": "resnet18", "encoder_depth": 3, "decoder_channels": [16, 8, 8]}
    det = ChangeDetector("siam_unet", kw).eval()
    with torch.no_grad():  # the height head starts at zero: give it weights so the test can fail
        for p in det.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.3)
    a, b = _pair(tmp_path, 150, 130)
    maps = []
    for bs in (1, 7):
        cfg = PredictConfig(tile=64, overlap=16, batch_size=bs)
        out = predict_rasters(det, a, b, tmp_path / f"b{bs}", cfg, progress=False)
        maps.append([rasterio.open(out[k]).read(1) for k in ("change_2d", "change_3d")])
    assert maps[0][1].std() > 0.1
    assert np.abs(maps[0][0].astype(int) - maps[1][0]).max() <= 1
    np.testing.assert_allclose(maps[0][1], maps[1][1], atol=1e-3)


def _blend_one_by_one(acc, w, plan, k0, k1, f):
    m, th, tw = len(plan.xs), plan.th // f, plan.tw // f
    for t, k in enumerate(range(k0, k1)):
        y, x = plan.ys[k // m] // f, plan.xs[k % m] // f
        acc[y : y + th, x : x + tw] += w[t]


@pytest.mark.parametrize("overlap", [16, 40])  # 40: more than half a 64 window, one add per window
def test_strided_blend_equals_window_by_window(overlap):
    """The strided overlap-add gives the window-by-window sum, flush last window and batches that
    span rows of windows included (2D grid and the half-resolution 3D grid)."""
    cfg = PredictConfig(tile=64, overlap=overlap, batch_size=7)
    plan = plan_tiles(150, 298, cfg)
    assert plan.xs[-1] - plan.xs[-2] != plan.xs[1] - plan.xs[0]  # the last window is off-grid
    g = torch.Generator().manual_seed(0)
    for f in (1, 2):
        want = torch.zeros(plan.height // f, plan.width // f, dtype=torch.float64)
        got = want.clone()
        for k0, k1 in plan.batches:
            w = torch.rand(k1 - k0, plan.th // f, plan.tw // f, generator=g, dtype=torch.float64)
            _blend_one_by_one(want, w, plan, k0, k1, f)
            P._blend_strided(got, w, plan, k0, k1, 0, f)
        assert want.min() > 0  # every pixel is covered
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
