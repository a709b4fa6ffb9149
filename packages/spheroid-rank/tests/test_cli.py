import json
import subprocess
import sys

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
    assert (
        main(
            [
                "morphology",
                "--data",
                str(synth_dir),
                "--out",
                str(morph),
                "--overlays",
                str(tmp_path / "ov"),
            ]
        )
        == 0
    )
    m = pd.read_csv(morph)
    assert len(m) == 240 and {"circularity", "feret_min", "debris_fraction"} <= set(m.columns)
    assert len(list((tmp_path / "ov").glob("*.png"))) == 240
    # embeddings from morphology features stand in for a trained network here
    from spheroid_rank.data.io import write_csv
    from spheroid_rank.data.metadata import load_experiment
    from spheroid_rank.engine.embed import embeddings_frame
    from spheroid_rank.eval.morph_features import morphology_features

    t = load_experiment(synth_dir)
    feats = morphology_features(
        m.merge(
            t[["plate", "well", "day"]].assign(
                plate=lambda d: d["plate"].astype(type(m["plate"][0]))
            ),
            on=["plate", "well", "day"],
        )
    )
    emb_csv = tmp_path / "emb.csv"
    write_csv(emb_csv, embeddings_frame(t, feats))
    out = tmp_path / "rank"
    assert (
        main(
            [
                "rank",
                "--embeddings",
                str(emb_csv),
                "--morphology",
                str(morph),
                "--out",
                str(out),
                "--pca-dim",
                "0",
            ]
        )
        == 0
    )
    r = pd.read_csv(out / "ranking.csv")
    assert list(r.columns[:6]) == [
        "condition",
        "n_wells",
        "score_median",
        "ci_low",
        "ci_high",
        "rank",
    ]
    assert len(r) == 12 and r["n_wells"].sum() == 60
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64") >= 5
    s = json.loads((out / "summary.json").read_text())
    assert s["spearman_vs_truth"] > 0.7 and "morphology_spearman_vs_truth" in s
    assert main(["evaluate", "--embeddings", str(emb_csv), "--out", str(tmp_path / "e.json")]) == 0
    ev = json.loads((tmp_path / "e.json").read_text())
    assert [p["per_class"] for p in ev["linear_probe"]] == [10, 20, 30, "all"]


def _bad_input(argv, capsys, name):
    """``main`` exits 2 with ONE stderr line naming the file and no traceback."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("spheroid-rank: error: ") and name in lines[0]
    assert "Traceback" not in err and "weights_only" not in err
    return lines[0]


def test_cli_bad_well_name(tmp_path, capsys):
    (tmp_path / "plate_1" / "day_10").mkdir(parents=True)
    (tmp_path / "plate_1" / "day_10" / "Z99.png").write_bytes(b"x")
    _bad_input(["validate", "--data", str(tmp_path)], capsys, "Z99")


def test_cli_embed_with_non_checkpoint(synth_dir, tmp_path, capsys):
    bad = tmp_path / "notes.pt"
    bad.write_text("not a checkpoint")
    line = _bad_input(
        ["embed", "--data", str(synth_dir), "--model", str(bad), "--out", str(tmp_path / "e.csv")],
        capsys,
        str(bad),
    )
    assert "not a spheroid-rank checkpoint" in line
    assert not (tmp_path / "e.csv").exists()


def test_cli_rank_with_bad_embeddings_csv(tmp_path, capsys):
    bad = tmp_path / "emb.csv"
    bad.write_text("plate,well\n1,B02\n")
    _bad_input(["rank", "--embeddings", str(bad), "--out", str(tmp_path / "r")], capsys, str(bad))


def test_cli_verbose_shows_traceback(tmp_path):
    with pytest.raises(Exception, match="does not exist"):
        main(
            [
                "-v",
                "rank",
                "--embeddings",
                str(tmp_path / "missing.csv"),
                "--out",
                str(tmp_path / "r"),
            ]
        )


def test_help_starts_without_the_ml_stack():
    """`--help` builds every parser without importing torch/lightly (registry choices are lazy)."""
    code = (
        "import sys\n"
        "from spheroid_rank.cli import build_parser\n"
        "build_parser()\n"
        "print(sorted(m for m in ('torch', 'lightly', 'timm', 'pandas') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("argv", "registry"),
    [
        (["train", "--data", "d", "--out", "o", "--method", "nope"], "METHODS"),
        (["rank", "--embeddings", "e", "--out", "o", "--temporal", "nope"], "TEMPORAL_MODELS"),
    ],
)
def test_lazy_choices_reject_and_list_the_registry(argv, registry, capsys):
    from spheroid_rank.models.ssl import METHODS
    from spheroid_rank.models.temporal import TEMPORAL_MODELS

    names = {"METHODS": METHODS, "TEMPORAL_MODELS": TEMPORAL_MODELS}[registry]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'nope'" in err
    assert all(repr(name) in err for name in names)
