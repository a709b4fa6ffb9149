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


def test_show_writes_png_with_gt_and_pseudo(tmp_path, capsys):
    import pickle

    from groupexp_da.data.synth import write_domain

    paths = write_domain(tmp_path / "t", "target", 3, seed=0)
    data = pickle.load(open(paths["train"], "rb"))
    info = data["data_list"][0]
    pseudo = dict(data)
    pseudo["data_list"] = [
        dict(
            info,
            instances=[
                dict(bbox_3d=info["instances"][0]["bbox_3d"], bbox_label_3d=0),
                dict(bbox_3d=[30.0, 5.0, -1.8, 4.0, 1.8, 1.6, 0.0], bbox_label_3d=-1),
            ],
        )
    ]
    pk = tmp_path / "pseudo.pkl"
    pickle.dump(pseudo, open(pk, "wb"))
    out = tmp_path / "bev.png"
    assert (
        main(
            [
                "show",
                "--info",
                str(paths["train"]),
                "--index",
                "0",
                "--pseudo",
                str(pk),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert out.stat().st_size > 10_000
    _assert_one_line_error(
        capsys,
        ["show", "--info", str(paths["train"]), "--index", "9", "--out", str(out)],
        "out of range",
    )


def _assert_one_line_error(capsys, argv: list[str], *needles: str) -> str:
    """``main(argv)`` exits 2 with one ``groupexp-da: error:`` line holding ``needles``."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("groupexp-da: error:")
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, err)
    return lines[0]


def test_missing_val_infos_is_one_line(tmp_path, capsys):
    from groupexp_da.data.synth import write_domain

    write_domain(tmp_path / "src", "source", 3, seed=0)
    (tmp_path / "tgt").mkdir()  # target folder without val_infos.pkl
    line = _assert_one_line_error(
        capsys,
        [
            "train",
            "pointpillars_synth_source_only_cpu",
            "--source",
            str(tmp_path / "src"),
            "--target",
            str(tmp_path / "tgt"),
            "--work-dir",
            str(tmp_path / "w"),
        ],
        str(tmp_path / "tgt" / "val_infos.pkl"),
    )
    assert "info pkl not found" in line
    assert not (tmp_path / "w").exists()
    _assert_one_line_error(
        capsys,
        [
            "show",
            "--info",
            str(tmp_path / "tgt" / "val_infos.pkl"),
            "--out",
            str(tmp_path / "b.png"),
        ],
        str(tmp_path / "tgt" / "val_infos.pkl"),
        "not found",
    )


def test_unknown_config_is_one_line(tmp_path, capsys):
    line = _assert_one_line_error(
        capsys,
        ["train", "pointpillars_no_such_cfg", "--work-dir", str(tmp_path)],
        "pointpillars_no_such_cfg",
    )
    assert "pointpillars_synth_st3d_cpu" in line  # lists the shipped names


def test_synth_one_frame_is_one_line(tmp_path, capsys):
    _assert_one_line_error(
        capsys,
        ["synth", "--out", str(tmp_path / "s"), "--frames", "1"],
        str(tmp_path / "s"),
        "at least 2 frames",
    )
    assert not (tmp_path / "s" / "train_infos.pkl").exists()


def test_non_checkpoint_is_one_line(tmp_path, capsys):
    from groupexp_da.data.synth import write_domain

    write_domain(tmp_path / "tgt", "target", 3, seed=0)
    bad = tmp_path / "model.pth"
    bad.write_bytes(b"not a checkpoint at all")
    line = _assert_one_line_error(
        capsys,
        [
            "test",
            "pointpillars_synth_source_only_cpu",
            str(bad),
            "--target",
            str(tmp_path / "tgt"),
            "--work-dir",
            str(tmp_path / "w"),
        ],
        str(bad),
        "not a groupexp-da checkpoint",
    )
    assert "weights_only" not in line


def test_verbose_shows_the_traceback(tmp_path):
    from groupexp_da.data.io import GroupExpError

    with pytest.raises(GroupExpError):
        main(["-v", "synth", "--out", str(tmp_path / "s"), "--frames", "1"])


def test_atomic_writers_leave_no_temp_on_failure(tmp_path):
    from groupexp_da.data.io import atomic_write, write_csv, write_json

    p = write_json(tmp_path / "a" / "x.json", {"k": 1})
    assert p.read_text().startswith("{")
    with pytest.raises(RuntimeError), atomic_write(p) as f:
        f.write("half")
        raise RuntimeError("boom")
    assert p.read_text().startswith("{")  # old content kept
    assert sorted(q.name for q in p.parent.iterdir()) == ["x.json"]
    c = write_csv(tmp_path / "r.csv", [{"a": 1, "b": 2}, {"a": 3, "b": 4}])
    assert c.read_text().splitlines() == ["a,b", "1,2", "3,4"]
