"""CLI surface and the show command on generated data."""

import pytest

from groupexp_da.cli import build_parser, main


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("synth", "train", "test", "adapt", "show", "demo"):
        assert cmd in out


def test_adapt_requires_source_checkpoint():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["adapt", "pointpillars_synth_st3d_cpu"])


def test_show_writes_png_with_gt_and_pseudo(tmp_path):
    import pickle

    from groupexp_da.data.synth import write_domain

    paths = write_domain(tmp_path / "t", "target", 3, seed=0)
    data = pickle.load(open(paths["train"], "rb"))
    info = data["data_list"][0]
    pseudo = dict(data)
    pseudo["data_list"] = [dict(info, instances=[
        dict(bbox_3d=info["instances"][0]["bbox_3d"], bbox_label_3d=0),
        dict(bbox_3d=[30.0, 5.0, -1.8, 4.0, 1.8, 1.6, 0.0], bbox_label_3d=-1)])]
    pk = tmp_path / "pseudo.pkl"
    pickle.dump(pseudo, open(pk, "wb"))
    out = tmp_path / "bev.png"
    assert main(["show", "--info", str(paths["train"]), "--index", "0", "--pseudo", str(pk),
                 "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000
    with pytest.raises(SystemExit, match="out of range"):
        main(["show", "--info", str(paths["train"]), "--index", "9", "--out", str(out)])
