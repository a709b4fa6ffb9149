import json

import pytest


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    from spheroid_rank.cli import main

    assert main(["--threads", "1", "demo", "--out", str(tmp_path), "--epochs", "2"]) == 0
    res = json.loads((tmp_path / "demo_result.json").read_text())
    assert res["spearman_ssl"] >= 0.8 and res["spearman_morphology"] >= 0.8
    assert (tmp_path / "rank" / "report.html").exists()
    assert (tmp_path / "rank" / "ranking_morphology.csv").exists()
