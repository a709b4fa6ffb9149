"""Dataset loaders, input checks, statistics, synthetic data and paired augmentations."""

import shutil
import warnings

import numpy as np
import pytest
import rasterio
import torch

from cd3d.data import (
    ChangeDataset,
    DataError,
    PairedAugment,
    compute_stats,
    read_raster,
    render,
)
from cd3d.data.synth import height_map_1m


def _retile(src_root, dst_root, mapping):
    for split in ("train", "val", "test"):
        for old, new in mapping.items():
            shutil.copytree(src_root / split / old, dst_root / split / new)


def test_synth_layout_and_georeferencing(synth_root):
    tiles = sorted((synth_root / "train" / "2010").iterdir())
    assert len(tiles) == 6
    name = tiles[0].name
    with (
        rasterio.open(synth_root / "train" / "2010" / name) as a,
        rasterio.open(synth_root / "train" / "3D" / name) as h,
    ):
        assert a.count == 3 and a.dtypes[0] == "uint8" and a.shape == (64, 64)
        assert a.crs.to_epsg() == 25830 and a.transform.a == 0.5
        assert h.shape == (32, 32) and h.transform.a == 1.0
        assert (h.transform.c, h.transform.f) == (a.transform.c, a.transform.f)


def test_synth_is_deterministic_and_windowable():
    a, b = render(5, 100, 200, 64, 96), render(5, 100, 200, 64, 96)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    big = render(5, 100, 200, 128, 128)
    np.testing.assert_array_equal(big["mask"][:64, :96], a["mask"])
    np.testing.assert_array_equal(big["dh"][:64, :96], a["dh"])
    assert not np.array_equal(render(6, 100, 200, 64, 96)["before"], a["before"])


def test_height_map_rule():
    dh = np.zeros((4, 4), np.float32)
    dh[:2, :2] = 6.0
    dh[2:, 2:] = [[1.0, 1.0], [1.0, 0.0]]  # block mean 0.75 < 1 m -> 0
    np.testing.assert_allclose(height_map_1m(dh), [[6.0, 0.0], [0.0, 0.0]])


def test_dataset_items_and_targets(synth_root):
    ds = ChangeDataset(synth_root, "train")
    assert len(ds) == 6 and ds.skipped == []
    it = ds[0]
    assert it["before"].shape == (3, 64, 64) and it["before"].dtype == torch.float32
    assert 0 <= it["before"].min() and it["before"].max() <= 1
    assert it["mask"].shape == (64, 64) and it["mask"].dtype == torch.int64
    assert it["height"].shape == (32, 32)
    # every non-zero height cell lies under the 2D change label
    total = sum(int((ds[i]["height"] != 0).sum()) for i in range(len(ds)))
    assert total > 0
    for i in range(len(ds)):
        lab = ds[i]["mask"].reshape(32, 2, 32, 2).amax((1, 3))
        assert bool((lab[ds[i]["height"] != 0] == 1).all())


def test_alternative_layout(synth_root, tmp_path):
    _retile(synth_root, tmp_path, {"2010": "t1", "2017": "t2", "2D": "2dcd", "3D": "3dcd"})
    ds = ChangeDataset(tmp_path, "val")
    ref = ChangeDataset(synth_root, "val")
    assert len(ds) == len(ref) == 2
    torch.testing.assert_close(ds[1]["height"], ref[1]["height"])


def _copy(synth_root, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(synth_root, root)
    return root


def test_unreadable_tile_skipped_with_one_warning(synth_root, tmp_path):
    root = _copy(synth_root, tmp_path)
    names = sorted(p.name for p in (root / "train" / "3D").iterdir())
    (root / "train" / "3D" / names[0]).write_bytes(b"II*\x00garbage")
    data = (root / "train" / "2017" / names[1]).read_bytes()
    (root / "train" / "2017" / names[1]).write_bytes(data[: len(data) // 3])  # truncated
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        ds = ChangeDataset(root, "train")
    msgs = [str(w.message) for w in rec if "skipped" in str(w.message)]
    assert (
        len(msgs) == 1
        and names[0] in msgs[0]
        and names[1] in msgs[0]
        and "skipped 2 tile" in msgs[0]
    )
    assert len(ds) == 4
    with pytest.raises(DataError, match=names[0]):
        ChangeDataset(root, "train", strict=True)


def test_mask_255_accepted_and_bad_values_rejected(synth_root, tmp_path):
    root = _copy(synth_root, tmp_path)
    name = sorted(p.name for p in (root / "val" / "2D").iterdir())[0]
    p = root / "val" / "2D" / name
    with rasterio.open(p) as src:
        prof, arr = src.profile, src.read()
    with rasterio.open(p, "w", **prof) as dst:
        dst.write(arr * 255)
    ref = ChangeDataset(synth_root, "val")
    torch.testing.assert_close(ChangeDataset(root, "val")[0]["mask"], ref[0]["mask"])
    arr[0, 0, 0] = 7
    with rasterio.open(p, "w", **prof) as dst:
        dst.write(arr)
    with pytest.raises(DataError, match=f"{name}.*only"):
        ChangeDataset(root, "val", strict=True)


@pytest.mark.parametrize("bad", [np.nan, -np.finfo(np.float32).max])
def test_nodata_heights_rejected(synth_root, tmp_path, bad):
    root = _copy(synth_root, tmp_path)
    name = sorted(p.name for p in (root / "test" / "3D").iterdir())[0]
    p = root / "test" / "3D" / name
    with rasterio.open(p) as src:
        prof, arr = src.profile, src.read()
    arr[0, 3, 3] = bad
    with rasterio.open(p, "w", **prof) as dst:
        dst.write(arr)
    with pytest.raises(DataError, match=f"{name}.*nodata"):
        ChangeDataset(root, "test", strict=True)


def test_uint16_and_missing_and_empty(synth_root, tmp_path):
    root = _copy(synth_root, tmp_path)
    name = sorted(p.name for p in (root / "test" / "2010").iterdir())[0]
    p = root / "test" / "2010" / name
    with rasterio.open(p) as src:
        prof, arr = src.profile, src.read()
    prof["dtype"] = "uint16"
    with rasterio.open(p, "w", **prof) as dst:
        dst.write(arr.astype(np.uint16) * 256)
    with pytest.raises(DataError, match=f"{name}.*uint16"):
        ChangeDataset(root, "test", strict=True)
    with pytest.raises(DataError, match="split folder not found"):
        ChangeDataset(root, "nope")
    for f in (root / "val" / "3D").iterdir():
        f.unlink()
    with pytest.warns(UserWarning, match="missing in 3D"):
        with pytest.raises(DataError, match="no readable tiles"):
            ChangeDataset(root, "val")
    shutil.rmtree(root / "val" / "2D")
    with pytest.raises(DataError, match="missing split folders"):
        ChangeDataset(root, "val")
    with pytest.raises(DataError, match="not found"):
        read_raster(root / "nothing.tif")


def test_stats(synth_root):
    st = compute_stats(synth_root)
    ds = ChangeDataset(synth_root, "train")
    allpx = torch.cat(
        [torch.cat([ds[i]["before"], ds[i]["after"]], 2).reshape(3, -1) for i in range(len(ds))], 1
    )
    np.testing.assert_allclose(st["mean"], allpx.double().mean(1).numpy(), atol=1e-5)
    np.testing.assert_allclose(st["std"], allpx.double().std(1, unbiased=False).numpy(), atol=1e-4)
    assert st["tiles"] == 6 and 0 < st["change_fraction"] < 0.5


def test_paired_augment_keeps_epochs_and_targets_aligned():
    g = torch.Generator().manual_seed(0)
    aug = PairedAugment(affine_p=1.0, jitter=0.0, generator=g)
    base = torch.zeros(64, 64)
    base[10:30, 20:26] = 1
    item = {
        "before": base.expand(3, 64, 64).clone(),
        "after": base.expand(3, 64, 64).clone() * 0.5,
        "mask": base.long(),
        "height": base.reshape(32, 2, 32, 2).mean((1, 3)) * 8,
    }
    for _ in range(5):
        out = aug(item)
        m = out["mask"].bool()
        assert m.any()
        assert torch.equal(out["before"][0] > 0.5, m)
        assert torch.equal(out["after"][0] > 0.25, m)
        hm = out["height"] > 4
        assert (hm.float() - m.float().reshape(32, 2, 32, 2).mean((1, 3)).round()).abs().sum() <= 12
    jit = PairedAugment(flip=False, rot90=False, affine_p=0.0, jitter=0.3, generator=g)(item)
    assert torch.equal(jit["mask"], item["mask"]) and not torch.allclose(
        jit["before"], item["before"]
    )
