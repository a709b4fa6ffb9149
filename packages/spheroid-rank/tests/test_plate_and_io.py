import numpy as np
import pytest
import tifffile
from PIL import Image

from spheroid_rank.data.io import ImageReadError, read_image
from spheroid_rank.data.plate import all_wells, inner_wells, is_inner, normalize_well, parse_well


def test_inner60_filter():
    inner = inner_wells()
    assert len(inner) == 60 and len(set(inner)) == 60
    assert sum(is_inner(w) for w in all_wells()) == 60
    assert not is_inner("A05") and not is_inner("H05") and not is_inner("C01")
    assert not is_inner("C12") and is_inner("B02") and is_inner("G11")


def test_well_names():
    assert normalize_well("b7") == "B07"
    assert parse_well("H12") == ("H", 12)
    for bad in ("I01", "A13", "A0", "7B", ""):
        with pytest.raises(ValueError):
            parse_well(bad)


def test_read_bit_depths_and_rgb(tmp_path):
    g8 = np.full((20, 30), 128, np.uint8)
    Image.fromarray(g8).save(tmp_path / "a.png")
    tifffile.imwrite(tmp_path / "b.tif", np.full((20, 30), 65535, np.uint16))
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 1] = 255
    Image.fromarray(rgb).save(tmp_path / "c.jpg", quality=100)
    assert read_image(tmp_path / "a.png").shape == (20, 30)
    assert read_image(tmp_path / "a.png")[0, 0] == pytest.approx(128 / 255)
    assert read_image(tmp_path / "b.tif")[0, 0] == pytest.approx(1.0)
    assert read_image(tmp_path / "c.jpg").mean() == pytest.approx(0.587, abs=0.02)


def test_focal_stack_sharpest_and_channels(tmp_path):
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 255, (32, 32)).astype(np.uint8)
    flat = np.full((32, 32), 100, np.uint8)
    tifffile.imwrite(tmp_path / "s.tif", np.stack([flat, sharp, flat]))
    best = read_image(tmp_path / "s.tif", focal="sharpest")
    np.testing.assert_allclose(best, sharp / 255.0, atol=1e-6)
    assert read_image(tmp_path / "s.tif", focal="channels").shape == (3, 32, 32)


def test_unreadable_image_names_file(tmp_path):
    bad = tmp_path / "B03.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match="B03.png"):
        read_image(bad)
