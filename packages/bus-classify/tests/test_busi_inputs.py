"""Real-data bad input (issue 14): masks missing or of another size, masks without images, one
class only, a split CSV whose paths moved, too few groups for k folds; plus the training
defaults (imbalance rule, per-epoch validation metrics)."""

from __future__ import annotations

import csv
import importlib.util
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bus_classify.cli import main
from bus_classify.data.io import BusClassifyError
from bus_classify.data.sources import discover, mask_paths, read_mask
from bus_classify.data.split import make_split
from bus_classify.engine.train import resolve_loss


def _one_line_error(argv, capsys, names: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("bus-classify: error: ") and names in err, err
    return err


def test_masks_union_wrong_size_and_orphans(tmp_path, busi_dir, caplog):
    root = tmp_path / "d"
    shutil.copytree(busi_dir, root)
    img = root / "benign" / "benign (1).png"
    size = Image.open(img).size
    union = np.asarray(read_mask(img, size)) > 0
    parts = [np.asarray(Image.open(p).convert("L")) > 127 for p in mask_paths(img)]
    assert union.sum() == np.logical_or.reduce(parts).sum() > 0
    Image.new("L", (size[0] + 5, size[1])).save(root / "benign" / "benign (1)_mask.png")
    with pytest.raises(
        BusClassifyError, match=r"benign \(1\)_mask.png: mask is .* but its image is"
    ):
        read_mask(img, size)
    Image.new("L", size).save(root / "malignant" / "malignant (999)_mask.png")
    with caplog.at_level(logging.WARNING):
        samples = discover(root)
    assert "malignant (999)_mask.png: mask without its image" in caplog.text
    assert not any("999" in s.ref for s in samples)


def test_gradcam_localization_counts_missing_masks(tmp_path, busi_dir):
    from bus_classify.eval.gradcam import cam_localization
    from bus_classify.models import create_model

    root = tmp_path / "d"
    shutil.copytree(busi_dir, root)
    lumps = sorted((root / "benign").glob("benign (?).png"))[:3]
    for p in mask_paths(lumps[0]):
        p.unlink()
    rows = [{"path": str(p), "label": 1} for p in lumps]
    model = create_model("bus_cnn_small", 2, img_size=32)
    hp = {"class_names": ["no_lump", "lump"], "img_size": 32, "resize": "letterbox"}
    loc = cam_localization(model, hp, rows)
    assert loc["n"] == 2 and loc["skipped_without_mask"] == 1
    assert 0.0 <= loc["cam_mass_in_mask"] <= 1.0 and 0.0 <= loc["pointing_game"] <= 1.0
    # no positive rows: nothing to localise
    assert cam_localization(model, hp, [{"path": str(p), "label": 0} for p in lumps]) is None


def test_one_class_folder_is_a_clear_error(tmp_path, busi_dir, capsys):
    root = tmp_path / "only"
    shutil.copytree(busi_dir / "benign", root / "benign")
    shutil.copytree(busi_dir / "malignant", root / "malignant")  # both are "lump"
    with pytest.raises(BusClassifyError, match="one label"):
        make_split(discover(root))
    _one_line_error(
        ["split", "--data", str(root), "--out", str(tmp_path / "s.csv")], capsys, str(root)
    )
    assert not (tmp_path / "s.csv").exists()


def test_split_csv_with_moved_paths(tmp_path, split_csv, capsys):
    rows = list(csv.DictReader(open(split_csv)))
    for r in rows:
        r["path"] = r["path"].replace(str(Path(r["path"]).parents[1]), str(tmp_path / "moved"))
    moved = tmp_path / "moved.csv"
    with open(moved, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    err = _one_line_error(
        ["train", "--split", str(moved), "--out", str(tmp_path / "r")], capsys, "moved.csv"
    )
    assert "image paths do not exist" in err
    assert not (tmp_path / "r" / "config.yaml").exists()


def test_too_few_groups_for_k_folds(tmp_path, busi_dir):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "busi_cv.py"
    spec = importlib.util.spec_from_file_location("busi_cv", path)
    cv = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cv)
    with pytest.raises(
        BusClassifyError,
        match=r"busi0: class '\w+' has \d+ images in \d+ duplicate "
        r"groups; 50-fold CV needs at least 50",
    ):
        cv.make_folds(str(busi_dir), "binary", 50, 0, tmp_path / "folds")
    splits = cv.make_folds(str(busi_dir), "binary", 3, 0, tmp_path / "folds")
    seen = {}
    for i, s in enumerate(splits):
        rows = list(csv.DictReader(open(s)))
        for r in rows:
            if r["split"] == "test":
                assert r["path"] not in seen  # every image is tested exactly once
                seen[r["path"]] = i
        groups = {}
        for r in rows:
            groups.setdefault(r["dup_group"], set()).add(r["split"])
        assert all(len(v) == 1 for v in groups.values())  # duplicates never straddle splits
    assert len(seen) == len(rows)


def test_imbalance_rule():
    assert resolve_loss("auto", [0] * 10 + [1] * 21, 2) == "weighted_ce"  # > 2:1
    assert resolve_loss("auto", [0] * 10 + [1] * 20, 2) == "ce"  # exactly 2:1
    assert resolve_loss("focal", [0, 1], 2) == "focal"
