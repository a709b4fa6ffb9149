"""The console script: help, synth, eval of baselines, predict errors and volume."""

import json
from fractions import Fraction

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import Affine

from cd3d.cli import main
from cd3d.data import CD3DError, ChangeDataset
from cd3d.engine.checkpoint import load_detector, save_detector
from cd3d.eval.baselines import ColourDiff, NoChange
from cd3d.eval.evaluate import evaluate
from cd3d.eval.metrics import KEYS
from cd3d.models import ChangeDetector


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("synth", "stats", "train", "eval", "predict", "volume", "demo", "models"):
        assert cmd in out


def test_synth_and_stats(tmp_path, capsys):
    assert (
        main(
            [
                "synth",
                "--out",
                str(tmp_path / "d"),
                "--train",
                "2",
                "--val",
                "1",
                "--test",
                "1",
                "--tile",
                "32",
                "--layout",
                "t1t2",
            ]
        )
        == 0
    )
    assert (tmp_path / "d" / "train" / "t1").is_dir()
    capsys.readouterr()
    assert main(["stats", "--data", str(tmp_path / "d")]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["tiles"] == 2 and len(st["mean"]) == 3


def test_eval_baselines_write_metrics(synth_root, tmp_path, capsys):
    assert (
        main(
            [
                "eval",
                "--baseline",
                "nochange",
                "--data",
                str(synth_root),
                "--out",
                str(tmp_path / "e"),
            ]
        )
        == 0
    )
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert set(KEYS) <= set(m) and m["f1"] == 0.0 and m["tiles"] == 3
    assert (tmp_path / "e" / "figure.png").stat().st_size > 1000
    rows = (tmp_path / "e" / "per_tile.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[0].startswith("tile,f1,iou")
    # the no-change baseline's RMSE is the RMS of the targets
    ds = ChangeDataset(synth_root, "test")
    rms = np.sqrt(
        np.mean(np.concatenate([ds.raw(i)["height"].ravel() ** 2 for i in range(len(ds))]))
    )
    assert m["rmse"] == pytest.approx(rms, rel=1e-5)
    assert evaluate(NoChange(), synth_root, "test")["crmse_3d_nonzero"] > 0


def test_colour_diff_baseline_fit(synth_root):
    cd = ColourDiff.fit(ChangeDataset(synth_root, "train"))
    assert 0 < cd.threshold < 1
    r = evaluate(cd, synth_root, "train")
    assert r["f1"] > 0 and r["recall"] > 0


def _fails(capsys, argv: list[str]) -> str:
    """Run the CLI expecting a bad-input exit: status 2, one stderr line, no traceback."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cd3d: error: "), err
    assert "Traceback" not in err and "weights_only" not in err
    return lines[0]


def _pair(tmp_path):
    tr = Affine(0.5, 0, 0, 0, -0.5, 0)
    for name, dt in (("a.tif", "uint8"), ("b.tif", "uint16")):
        with rasterio.open(
            tmp_path / name,
            "w",
            driver="GTiff",
            width=8,
            height=8,
            count=3,
            dtype=dt,
            crs="EPSG:25830",
            transform=tr,
        ) as d:
            d.write(np.ones((3, 8, 8), dt))
    return tmp_path / "a.tif", tmp_path / "b.tif"


def test_predict_errors_exit_2(tmp_path, capsys):
    a, b = _pair(tmp_path)
    pred = [
        "predict",
        "--before",
        str(a),
        "--after",
        str(a),
        "--out",
        str(tmp_path / "o"),
        "--checkpoint",
    ]
    assert "none.ckpt: checkpoint not found" in _fails(capsys, pred + [str(tmp_path / "none.ckpt")])
    # files that are not cd3d checkpoints: say what they are not, never suggest unsafe loading
    junk = tmp_path / "weights.ckpt"
    junk.write_bytes(b"\x00not a zip or pickle" * 10)
    assert f"{junk}: not a cd3d checkpoint (not a PyTorch file" in _fails(
        capsys, pred + [str(junk)]
    )
    torch.save({"model": torch.zeros(2)}, tmp_path / "plain.pt")
    line = _fails(capsys, pred + [str(tmp_path / "plain.pt")])
    assert (
        f"{tmp_path / 'plain.pt'}: not a cd3d checkpoint (no 'detector' hyper-parameters)" in line
    )
    torch.save(
        {"hyper_parameters": {"detector": {}}, "obj": Fraction(1, 3)}, tmp_path / "pickled.ckpt"
    )
    line = _fails(capsys, pred + [str(tmp_path / "pickled.ckpt")])
    assert f"{tmp_path / 'pickled.ckpt'}: not a cd3d checkpoint (it holds Python objects" in line
    # input rasters are checked and named too
    good = tmp_path / "good.ckpt"
    save_detector(ChangeDetector("pixel_mlp", {"hidden": 4}), good)
    line = _fails(
        capsys,
        [
            "predict",
            "--before",
            str(a),
            "--after",
            str(b),
            "--checkpoint",
            str(good),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert "b.tif" in line and "uint16" in line
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_other_bad_inputs_exit_2(tmp_path, capsys):
    assert "nope.yaml: config file not found" in _fails(
        capsys, ["train", "--config", str(tmp_path / "nope.yaml"), "--data", str(tmp_path)]
    )
    assert "split folder not found" in _fails(
        capsys,
        ["eval", "--baseline", "nochange", "--data", str(tmp_path), "--out", str(tmp_path / "e")],
    )
    assert "c3.tif: file not found" in _fails(
        capsys,
        ["volume", "--change-3d", str(tmp_path / "c3.tif"), "--out", str(tmp_path / "r.geojson")],
    )
    with pytest.raises(CD3DError):  # -v shows the exception instead
        main(
            [
                "-v",
                "volume",
                "--change-3d",
                str(tmp_path / "c3.tif"),
                "--out",
                str(tmp_path / "r.geojson"),
            ]
        )


def test_save_load_detector_round_trip(tmp_path):
    det = ChangeDetector(
        "pixel_mlp", {"hidden": 4}, mean=(0.1, 0.2, 0.3), std=(1, 2, 3), height_scale=7.0
    )
    back = load_detector(save_detector(det, tmp_path / "d.ckpt"))
    assert back.config() == det.config()
    x = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(back(x, x)[1], det(x, x)[1])


def test_volume_cli(tmp_path, capsys):
    a = np.zeros((6, 6), np.float32)
    a[1:3, 1:3] = 3.0
    with rasterio.open(
        tmp_path / "c.tif",
        "w",
        driver="GTiff",
        width=6,
        height=6,
        count=1,
        dtype="float32",
        crs="EPSG:25830",
        transform=Affine(1, 0, 0, 0, -1, 0),
        nodata=-9999.0,
    ) as d:
        d.write(a, 1)
    assert (
        main(
            ["volume", "--change-3d", str(tmp_path / "c.tif"), "--out", str(tmp_path / "r.geojson")]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["regions"] == 1 and out["summary"]["net_volume_m3"] == pytest.approx(12.0)
