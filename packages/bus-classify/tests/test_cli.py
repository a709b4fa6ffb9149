"""CLI: help lists the subcommands, synth + split run, bad input gives a clear error."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from bus_classify.cli import main


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("synth", "split", "train", "eval", "predict", "zero-shot", "demo"):
        assert cmd in out


def test_help_does_not_import_the_frameworks():
    """`bus-classify --help` stays fast: the CLI module and the package import no torch/timm."""
    code = (
        "import sys, bus_classify.cli as c\n"
        "try:\n    c.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'timm', 'lightning', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_synth_then_split(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "d"), "--n", "30", "--size", "48"]) == 0
    assert main(["split", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "s.csv")]) == 0
    out = capsys.readouterr().out
    assert "near-duplicate groups" in out
    with open(tmp_path / "s.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    assert not any("_mask" in r["path"] for r in rows)


def _bad_call(argv: list[str], capsys, names: str) -> str:
    """Exit status 2, one stderr line ``bus-classify: error: ...`` naming ``names``, no traceback."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("bus-classify: error: "), err
    assert names in err and "Traceback" not in err
    return err


def test_missing_data_is_a_clear_error(tmp_path, capsys):
    err = _bad_call(
        ["split", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "s.csv")],
        capsys,
        "nope",
    )
    assert "data folder does not exist" in err
    assert not (tmp_path / "s.csv").exists()


def test_non_checkpoint_is_a_clear_error(tmp_path, capsys, split_csv):
    bogus = tmp_path / "weights.ckpt"
    bogus.write_bytes(b"definitely not a torch file")
    err = _bad_call(
        [
            "eval",
            "--checkpoint",
            str(bogus),
            "--split",
            str(split_csv),
            "--out",
            str(tmp_path / "e"),
        ],
        capsys,
        "weights.ckpt",
    )
    assert "not a bus-classify checkpoint" in err and "weights_only" not in err
    import torch

    torch.save({"some": torch.zeros(2)}, tmp_path / "other.pt")
    err = _bad_call(
        [
            "eval",
            "--checkpoint",
            str(tmp_path / "other.pt"),
            "--split",
            str(split_csv),
            "--out",
            str(tmp_path / "e"),
        ],
        capsys,
        "other.pt",
    )
    assert "not a bus-classify checkpoint (no 'hyper_parameters' entry)" in err


def test_bad_split_csv_and_config_are_clear_errors(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    _bad_call(["train", "--split", str(bad), "--out", str(tmp_path / "r")], capsys, "bad.csv")
    _bad_call(
        [
            "train",
            "--split",
            str(bad),
            "--out",
            str(tmp_path / "r"),
            "--config",
            str(tmp_path / "missing.yaml"),
        ],
        capsys,
        "missing.yaml",
    )
    _bad_call(
        ["train", "--split", str(bad), "--out", str(tmp_path / "r"), "--set", "lr=fast"],
        capsys,
        "'lr'",
    )


def test_predict_checks_its_inputs_before_importing_torch(tmp_path):
    """Each bad `predict` input gives its one error line from a process that never imported
    torch (so the error comes in about a second, not after the ML stack loads)."""
    import zipfile

    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint\n")
    ckpt = tmp_path / "model.ckpt"  # a zip archive passes the early check; torch is not needed
    with zipfile.ZipFile(ckpt, "w") as z:
        z.writestr("archive/data.pkl", b"")
    images = tmp_path / "imgs"
    images.mkdir()
    (images / "a.png").write_bytes(b"")
    bad_cal = tmp_path / "cal.json"
    bad_cal.write_text("{not json")
    partial_cal = tmp_path / "partial.json"
    partial_cal.write_text('{"temperature": 1.0}')
    cases = [
        (["--checkpoint", str(text), "--images", str(images)], "not a bus-classify checkpoint"),
        (["--checkpoint", str(tmp_path / "none.ckpt"), "--images", str(images)], "not found"),
        (["--checkpoint", str(ckpt), "--images", str(tmp_path / "gone")], "no such image"),
        (["--checkpoint", str(ckpt), "--images", str(text)], "not an image file"),
        (
            ["--checkpoint", str(ckpt), "--images", str(images), "--calibration", str(bad_cal)],
            "not a JSON calibration file",
        ),
        (
            ["--checkpoint", str(ckpt), "--images", str(images), "--calibration", str(partial_cal)],
            "missing ['threshold', 'class_names']",
        ),
    ]
    (tmp_path / "empty_dir").mkdir()
    cases.append(
        (["--checkpoint", str(ckpt), "--images", str(tmp_path / "empty_dir")], "no images found")
    )
    code = (
        "import sys, json, bus_classify.cli as c\n"
        "for argv in json.loads(sys.argv[1]):\n"
        "    try:\n        c.main(['predict', *argv, '--out', sys.argv[2]])\n"
        "    except SystemExit as e:\n        print('exit', e.code, file=sys.stderr)\n"
        "print(sorted(m for m in ('torch', 'timm', 'lightning') if m in sys.modules))"
    )
    import json

    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps([a for a, _ in cases]), str(tmp_path / "p.csv")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 2 * len(cases), out.stderr
    for (argv, expected), err, status in zip(cases, lines[::2], lines[1::2]):
        assert err.startswith("bus-classify: error: ") and expected in err, (argv, err)
        assert status == "exit 2"
    assert not (tmp_path / "p.csv").exists()


def test_bad_training_data_is_one_line_even_from_a_loader_worker(busi_dir, tmp_path, capsys):
    """A wrong-size lesion mask stops `train` before it writes anything; a corrupt image met by
    a DataLoader worker process gives the worker's error line, not torch's wrapped traceback."""
    import shutil
    from pathlib import Path

    from PIL import Image

    from bus_classify.data.io import write_csv
    from bus_classify.data.sources import discover
    from bus_classify.data.split import make_split

    root = tmp_path / "busi"
    shutil.copytree(busi_dir, root)
    rows, _ = make_split(discover(root), seed=0)
    csv = write_csv(tmp_path / "split.csv", rows)
    first = next(r["path"] for r in rows if r["split"] == "train" and "normal" not in r["path"])
    mask = first[: -len(".png")] + "_mask.png"
    Image.new("L", (10, 10)).save(mask)
    fast = ["--set", "img_size=32", "epochs=1", "--device", "cpu", "--no-progress"]
    out = tmp_path / "run"
    argv = ["train", "--split", str(csv), "--config", "resnet18", "--out", str(out), *fast]
    err = _bad_call(argv, capsys, "_mask.png: mask is 10x10 px")
    assert not out.exists()  # nothing written
    Path(mask).unlink()
    Path(first).write_bytes(b"not an image")
    argv = ["train", "--split", str(csv), "--config", "cnn", "--out", str(out), *fast]
    err = _bad_call([*argv, "--num-workers", "1", "--set", "cache_images=false"], capsys, first)
    assert "not a readable image" in err and "DataLoader worker" not in err
