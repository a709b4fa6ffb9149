"""The demo pipeline end to end at tiny sizes (slow: trains a model)."""

import json

import pytest

from cd3d.cli import main


@pytest.mark.slow
def test_demo_quick(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--quick"]) == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert set(s["test_metrics"]) == {"siam_unet", "no_change", "colour_diff"}
    for k in ("metrics", "figure", "change_2d", "change_3d", "regions", "overview"):
        assert (tmp_path / s["files"][k].split(str(tmp_path) + "/")[-1]).exists()
