import json

import pandas as pd
import pytest

from spheroid_rank.cli import main


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("synth", "validate", "morphology", "train", "embed", "rank", "evaluate", "demo"):
        assert cmd in out


def test_cli_morphology_rank_evaluate(synth_dir, tmp_path, capsys):
    morph = tmp_path / "m.csv"
    assert main(["morphology", "--data", str(synth_dir), "--out", str(morph),
                 "--overlays", str(tmp_path / "ov")]) == 0
    m = pd.read_csv(morph)
    assert len(m) == 240 and {"circularity", "feret_min", "debris_fraction"} <= set(m.columns)
    assert len(list((tmp_path / "ov").glob("*.png"))) == 240
    # embeddings from morphology features stand in for a trained network here
    from spheroid_rank.data.metadata import load_experiment
    from spheroid_rank.engine.embed import embeddings_frame, write_csv
    from spheroid_rank.eval.morph_features import morphology_features

    t = load_experiment(synth_dir)
    feats = morphology_features(m.merge(t[["plate", "well", "day"]].assign(plate=lambda d:
                                                                            d["plate"].astype(
                                                                                type(m["plate"][0]))),
                                        on=["plate", "well", "day"]))
    emb_csv = tmp_path / "emb.csv"
    write_csv(embeddings_frame(t, feats), emb_csv)
    out = tmp_path / "rank"
    assert main(["rank", "--embeddings", str(emb_csv), "--morphology", str(morph), "--out",
                 str(out), "--pca-dim", "0"]) == 0
    r = pd.read_csv(out / "ranking.csv")
    assert list(r.columns[:6]) == ["condition", "n_wells", "score_median", "ci_low", "ci_high",
                                   "rank"]
    assert len(r) == 12 and r["n_wells"].sum() == 60
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64") >= 5
    s = json.loads((out / "summary.json").read_text())
    assert s["spearman_vs_truth"] > 0.7 and "morphology_spearman_vs_truth" in s
    assert main(["evaluate", "--embeddings", str(emb_csv), "--out", str(tmp_path / "e.json")]) == 0
    ev = json.loads((tmp_path / "e.json").read_text())
    assert [p["per_class"] for p in ev["linear_probe"]] == [10, 20, 30, "all"]


def test_cli_bad_input_message(tmp_path, capsys):
    (tmp_path / "plate_1" / "day_10").mkdir(parents=True)
    (tmp_path / "plate_1" / "day_10" / "Z99.png").write_bytes(b"x")
    assert main(["validate", "--data", str(tmp_path)]) == 2
    assert "Z99" in capsys.readouterr().err
