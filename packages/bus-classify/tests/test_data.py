"""Readers, layouts, mask exclusion, bad input."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from bus_classify.data.io import ImageReadError, load_image
from bus_classify.data.sources import detect_layout, discover, is_mask, read_sample


def test_mask_exclusion(busi_dir):
    samples = discover(busi_dir)
    names = [s.ref for s in samples]
    assert not any("_mask" in n for n in names)
    n_files = sum(1 for p in busi_dir.rglob("*.png") if not is_mask(p))
    assert len(samples) == n_files
    assert is_mask(busi_dir / "benign" / "benign (1)_mask.png")
    assert is_mask(busi_dir / "x" / "benign (3)_mask_1.png")
    assert not is_mask(busi_dir / "benign" / "benign (1).png")


def test_binary_and_three_class_labels(busi_dir):
    bin_ = discover(busi_dir, "binary")
    tri = discover(busi_dir, "3class")
    for s in bin_:
        assert s.label == (0 if s.source_class == "normal" else 1)
    assert {s.label for s in tri} == {0, 1, 2}
    assert [s.ref for s in bin_] == [s.ref for s in tri]


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16", "CMYK", "P", "F", "LA", "1"])
def test_modes_become_rgb(tmp_path, mode):
    arr = (np.arange(64 * 64).reshape(64, 64) % 256).astype(np.uint8)
    if mode == "I;16":
        img = Image.fromarray(arr.astype(np.uint16) * 200)
    elif mode == "F":
        img = Image.fromarray(arr.astype(np.float32) / 7.0)
    else:
        img = Image.fromarray(arr, "L").convert(mode)
    suffix = ".tif" if mode in ("F", "CMYK") else ".png"
    path = tmp_path / f"x{suffix}"
    img.save(path)
    out = load_image(path)
    assert out.mode == "RGB" and out.size == (64, 64)
    a = np.asarray(out)
    if mode in ("L", "I;16", "F", "LA"):
        assert a[..., 0].max() == 255 and a[..., 0].min() == 0  # stretched / kept full range


def test_rgba_alpha_composited_on_black(tmp_path):
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[:20, :, 3] = 255  # top half opaque, bottom transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    a = np.asarray(load_image(tmp_path / "a.png"))
    assert a[:20].min() == 200 and a[20:].max() == 0


def test_bad_inputs_name_the_file(tmp_path):
    (tmp_path / "corrupt.png").write_bytes(b"not an image at all")
    with pytest.raises(ImageReadError, match="corrupt.png"):
        load_image(tmp_path / "corrupt.png")
    Image.fromarray(np.zeros((100, 100), np.uint8)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="trunc.png"):
        load_image(tmp_path / "trunc.png")
    Image.fromarray(np.zeros((20, 100), np.uint8)).save(tmp_path / "small.png")
    with pytest.raises(ImageReadError, match=r"small.png: image is 100x20"):
        load_image(tmp_path / "small.png")


def test_empty_class_folder_is_an_error(tmp_path, busi_dir):
    root = tmp_path / "d"
    shutil.copytree(busi_dir, root)
    for p in (root / "normal").iterdir():
        if not is_mask(p):
            p.unlink()
    with pytest.raises(ValueError, match="normal: class folder is empty"):
        discover(root)


def test_split_folder_layout(tmp_path, busi_dir):
    root = tmp_path / "s"
    for split, cls, src in [
        ("train", "lump", "benign"),
        ("train", "no_lump", "normal"),
        ("val", "lump", "malignant"),
        ("val", "no_lump", "normal"),
        ("test", "lump", "benign"),
        ("test", "no_lump", "normal"),
    ]:
        (root / split / cls).mkdir(parents=True)
        for p in sorted((busi_dir / src).glob("* (?).png"))[:2]:
            shutil.copy(p, root / split / cls / p.name)
    assert detect_layout(root) == "split"
    samples = discover(root)
    assert {s.split for s in samples} == {"train", "val", "test"}
    assert all(s.label == (1 if s.source_class == "lump" else 0) for s in samples)


def test_hf_export(tmp_path, busi_dir):
    import datasets

    files = (
        sorted((busi_dir / "benign").glob("benign (?).png"))[:3]
        + sorted((busi_dir / "normal").glob("normal (?).png"))[:2]
    )
    feats = datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.ClassLabel(names=["benign", "malignant", "normal"]),
        }
    )
    ds = datasets.Dataset.from_dict(
        {"image": [str(f) for f in files], "label": [0, 0, 0, 2, 2]}, features=feats
    )
    ds.save_to_disk(str(tmp_path / "hf"))
    samples = discover(tmp_path / "hf")
    assert [s.label for s in samples] == [1, 1, 1, 0, 0]
    img = read_sample(samples[0].ref)
    assert img.mode == "RGB" and img.size == (64, 64)
    bad = datasets.Dataset.from_dict(
        {"image": [str(f) for f in files]}, features=datasets.Features({"image": datasets.Image()})
    )
    bad.save_to_disk(str(tmp_path / "nolabel"))
    with pytest.raises(ValueError, match="no label column"):
        discover(tmp_path / "nolabel")


def test_real_microscopy_tiff_reads(shared_dir):
    if shared_dir is None:
        pytest.skip("shared fixtures not available (set CV_SHARED_DIR)")
    path = shared_dir / "fixtures" / "microscopy" / "orgaquant_8.tif"
    if not path.exists():
        pytest.skip(f"{path} missing")
    img = load_image(path)  # a real grayscale TIFF from the wild
    assert img.mode == "RGB" and min(img.size) >= 32


def test_atomic_writers_leave_nothing_half_written(tmp_path):
    import json

    from bus_classify.data.io import atomic_write, write_csv, write_json

    path = write_json(tmp_path / "sub" / "m.json", {"a": np.float32(0.5)})
    assert json.loads(path.read_text()) == {"a": 0.5}
    with pytest.raises(RuntimeError):
        with atomic_write(tmp_path / "m.json") as f:
            f.write("partial")
            raise RuntimeError("interrupted")
    assert not (tmp_path / "m.json").exists() and not list(tmp_path.glob(".*tmp*"))
    write_csv(tmp_path / "r.csv", [{"x": 1, "y": "a"}, {"x": 2, "y": "b"}])
    assert (tmp_path / "r.csv").read_text().splitlines() == ["x,y", "1,a", "2,b"]
    import pandas as pd

    write_csv(tmp_path / "d.csv", pd.DataFrame({"x": [3]}))
    assert (tmp_path / "d.csv").read_text().splitlines() == ["x", "3"]
