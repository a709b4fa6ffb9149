"""CLI: help lists the subcommands, synth + split run, bad input gives a clear error."""

from __future__ import annotations

import csv

import pytest

from bus_classify.cli import main


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("synth", "split", "train", "eval", "predict", "zero-shot", "demo"):
        assert cmd in out


def test_synth_then_split(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "d"), "--n", "30", "--size", "48"]) == 0
    assert main(["split", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "s.csv")]) == 0
    out = capsys.readouterr().out
    assert "near-duplicate groups" in out
    with open(tmp_path / "s.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    assert not any("_mask" in r["path"] for r in rows)


def test_missing_data_is_a_clear_error(tmp_path, capsys):
    code = main(["split", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "s.csv")])
    assert code == 2
    assert "nope: data folder does not exist" in capsys.readouterr().err
