"""2D-only A/B/label data (LEVIR-CD layout): loading, splits, bad input, and train/eval/predict with task 2d."""

import json

import numpy as np
import pytest
import rasterio
from levir_data import make_levir
from PIL import Image

from cd3d.cli import main
from cd3d.data import ChangeDataset, DataError
from cd3d.data.pairs import list_pairs


@pytest.mark.parametrize("layout", ["splits", "lists", "flat"])
def test_layouts_and_splits(tmp_path, layout):
    root = make_levir(tmp_path / "d", layout)
    sizes = {s: len(ChangeDataset(root, s, split_seed=1)) for s in ("train", "val", "test")}
    assert sum(sizes.values()) == 12
    if layout == "flat":  # seeded 70/10/20, disjoint and reproducible
        names = [
            set(t.name for t in ChangeDataset(root, s, split_seed=1).tiles)
            for s in ("train", "val", "test")
        ]
        assert sizes == {"train": 8, "val": 1, "test": 3} and not (
            names[0] & names[1] or names[0] & names[2]
        )
        assert [t.name for t in ChangeDataset(root, "test", split_seed=1).tiles] == sorted(names[2])
        assert names[2] != {t.name for t in ChangeDataset(root, "test", split_seed=2).tiles}
    else:
        assert sizes == {"train": 8, "val": 2, "test": 2}
    ds = ChangeDataset(root, "train", split_seed=1)
    it = ds[0]
    assert not ds.has_3d and "height" not in it and it["before"].shape == (3, 64, 64)
    assert set(np.unique(it["mask"].numpy())) <= {0, 1} and it["mask"].sum() > 0


def test_jpeg_images_and_01_labels(tmp_path):
    root = make_levir(tmp_path / "d", "lists", fmt="jpg")
    lbl = root / "label" / "train_0.png"
    Image.fromarray((np.asarray(Image.open(lbl)) // 255).astype(np.uint8)).save(lbl)  # {0,1} labels
    ds = ChangeDataset(root, "train")
    assert len(ds) == 8 and ds.tiles[0].before.suffix == ".jpg" and ds[0]["mask"].max() == 1


def test_bad_pairs_are_counted_skips_naming_the_file(tmp_path, caplog):
    root = make_levir(tmp_path / "d", "splits")
    (root / "train" / "B" / "train_1.png").unlink()  # missing partner
    Image.new("RGB", (32, 32)).save(root / "train" / "B" / "train_2.png")  # size mismatch
    bad = np.zeros((64, 64), np.uint8)
    bad[0, :3] = (0, 7, 255)
    Image.fromarray(bad).save(root / "train" / "label" / "train_3.png")  # label value 7
    with pytest.warns(UserWarning, match="skipped 3 tile"):
        ds = ChangeDataset(root, "train")
    assert len(ds) == 5 and len(ds.skipped) == 3
    text = " ".join(ds.skipped)
    assert (
        "train_1: missing in B" in text
        and "train_2.png: shape" in text
        and "train_3.png: 2D change map" in text
    )
    assert "skipped 3 tile(s)" in caplog.text
    with pytest.raises(DataError, match="train_2.png: shape"):
        ChangeDataset(root, "train", strict=True)
    (root / "list").mkdir()
    with pytest.raises(DataError, match="folder not found"):
        list_pairs(tmp_path / "nothing", "train")


@pytest.mark.slow
def test_train_eval_predict_2d_cli(tmp_path, capsys):
    root = make_levir(tmp_path / "d", "lists")
    sets = ["model.name=pixel_mlp", "model.kwargs={hidden: 8}", "trainer.max_epochs=2", "trainer.accelerator=cpu",
            "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "data.batch_size=4"]  # fmt: skip
    argv = ["train", "--config", "levir.yaml", "--data", str(root), "--out", str(tmp_path / "run")]
    assert main(argv + [x for s in sets for x in ("--set", s)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert (
        res["best_crmse"] is None and (tmp_path / "run" / "checkpoints" / "best-f1.ckpt").is_file()
    )
    ck = str(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert (
        main(["eval", "--checkpoint", ck, "--data", str(root), "--out", str(tmp_path / "e")]) == 0
    )
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert m["task"] == "2d" and m["tiles"] == 2 and "f1" in m and "rmse" not in m
    capsys.readouterr()
    a, b = root / "A" / "test_10.png", root / "B" / "test_10.png"
    assert main(["predict", "--before", str(a), "--after", str(b), "--checkpoint", ck, "--out", str(tmp_path / "p"),
                 "--tile", "32", "--overlap", "8", "--quiet"]) == 0  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["change_2d.tif"]
    with rasterio.open(tmp_path / "p" / "change_2d.tif") as src:
        assert src.shape == (64, 64) and src.crs is None


def test_2d_detector_predicts_change_2d_only(tmp_path, capsys):
    from cd3d.engine.checkpoint import save_detector
    from cd3d.models import ChangeDetector

    root = make_levir(tmp_path / "d", "flat")
    ck = save_detector(ChangeDetector("pixel_mlp", {"hidden": 4}, task="2d"), tmp_path / "d2.ckpt")
    a, b = root / "A" / "train_0.png", root / "B" / "train_0.png"
    assert main(["predict", "--before", str(a), "--after", str(b), "--checkpoint", str(ck), "--out", str(tmp_path / "p"),
                 "--tile", "32", "--overlap", "8", "--quiet"]) == 0  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["change_2d.tif"]
