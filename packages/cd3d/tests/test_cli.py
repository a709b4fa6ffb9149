"""The console script: help, synth, eval of baselines, predict errors and volume."""

import json

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine

from cd3d.cli import main
from cd3d.data import ChangeDataset
from cd3d.eval.baselines import ColourDiff, NoChange
from cd3d.eval.evaluate import evaluate
from cd3d.eval.metrics import KEYS


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("synth", "stats", "train", "eval", "predict", "volume", "demo", "models"):
        assert cmd in out


def test_synth_and_stats(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "d"), "--train", "2", "--val", "1", "--test", "1",
                 "--tile", "32", "--layout", "t1t2"]) == 0
    assert (tmp_path / "d" / "train" / "t1").is_dir()
    capsys.readouterr()
    assert main(["stats", "--data", str(tmp_path / "d")]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["tiles"] == 2 and len(st["mean"]) == 3


def test_eval_baselines_write_metrics(synth_root, tmp_path, capsys):
    assert main(["eval", "--baseline", "nochange", "--data", str(synth_root), "--out", str(tmp_path / "e")]) == 0
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert set(KEYS) <= set(m) and m["f1"] == 0.0 and m["tiles"] == 3
    assert (tmp_path / "e" / "figure.png").stat().st_size > 1000
    rows = (tmp_path / "e" / "per_tile.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[0].startswith("tile,f1,iou")
    # the no-change baseline's RMSE is the RMS of the targets
    ds = ChangeDataset(synth_root, "test")
    rms = np.sqrt(np.mean(np.concatenate([ds.raw(i)["height"].ravel() ** 2 for i in range(len(ds))])))
    assert m["rmse"] == pytest.approx(rms, rel=1e-5)
    assert evaluate(NoChange(), synth_root, "test")["crmse_3d_nonzero"] > 0


def test_colour_diff_baseline_fit(synth_root):
    cd = ColourDiff.fit(ChangeDataset(synth_root, "train"))
    assert 0 < cd.threshold < 1
    r = evaluate(cd, synth_root, "train")
    assert r["f1"] > 0 and r["recall"] > 0


def test_predict_errors_exit_2(tmp_path, capsys):
    tr = Affine(0.5, 0, 0, 0, -0.5, 0)
    for name, dt in (("a.tif", "uint8"), ("b.tif", "uint16")):
        with rasterio.open(tmp_path / name, "w", driver="GTiff", width=8, height=8, count=3, dtype=dt,
                           crs="EPSG:25830", transform=tr) as d:
            d.write(np.ones((3, 8, 8), dt))
    rc = main(["predict", "--before", str(tmp_path / "a.tif"), "--after", str(tmp_path / "b.tif"),
               "--checkpoint", str(tmp_path / "none.ckpt"), "--out", str(tmp_path / "o")])
    assert rc == 2 and "none.ckpt" in capsys.readouterr().err


def test_volume_cli(tmp_path, capsys):
    a = np.zeros((6, 6), np.float32)
    a[1:3, 1:3] = 3.0
    with rasterio.open(tmp_path / "c.tif", "w", driver="GTiff", width=6, height=6, count=1, dtype="float32",
                       crs="EPSG:25830", transform=Affine(1, 0, 0, 0, -1, 0), nodata=-9999.0) as d:
        d.write(a, 1)
    assert main(["volume", "--change-3d", str(tmp_path / "c.tif"), "--out", str(tmp_path / "r.geojson")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["regions"] == 1 and out["summary"]["net_volume_m3"] == pytest.approx(12.0)
