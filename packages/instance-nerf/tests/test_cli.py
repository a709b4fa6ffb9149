"""CLI end to end on a tiny trained run: synth, eval, extract-grid, query, export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from instance_nerf.cli import build_parser, main
from instance_nerf.engine.config import instance_cpu_config


def _assert_cli_error(capsys, argv: list[str], *needles: str) -> None:
    """Exit 2, one stderr line ``instance-nerf: error: ...`` naming the file, no traceback."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("instance-nerf: error: "), err
    assert "Traceback" not in err and "pickle" not in err and "weights_only=False" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_bad_input_files_give_one_line(tmp_path, capsys):
    (tmp_path / "config.yml").write_text("not: [valid")
    _assert_cli_error(
        capsys,
        ["eval", "--config", str(tmp_path / "config.yml"), "--out", str(tmp_path / "o")],
        "config.yml",
    )
    _assert_cli_error(
        capsys,
        ["eval", "--config", str(tmp_path / "missing.yml"), "--out", str(tmp_path / "o")],
        "missing.yml",
        "not found",
    )
    _assert_cli_error(
        capsys, ["synth", "--out", str(tmp_path / "e"), "--objects", "0"], "num_objects"
    )


def test_not_a_checkpoint_says_so(tmp_path):
    from instance_nerf.data.io import InstanceNerfError
    from instance_nerf.engine.checkpoint import load_checkpoint

    (tmp_path / "x.ckpt").write_bytes(b"this is not a torch file")
    with pytest.raises(InstanceNerfError, match="x.ckpt: not a nerfstudio checkpoint") as exc:
        load_checkpoint(tmp_path / "x.ckpt")
    assert "weights_only=False" not in str(exc.value)


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("synth", "eval", "extract-grid", "query", "export", "demo"):
        assert cmd in out


def test_synth_cli(tmp_path, capsys):
    assert (
        main(
            [
                "synth",
                "--out",
                str(tmp_path / "s"),
                "--seed",
                "1",
                "--views",
                "4",
                "--size",
                "16",
                "--objects",
                "2",
                "--voxel-resolution",
                "8",
                "--noisy-masks",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["views"] == 4 and summary["objects"] == 2
    assert (tmp_path / "s" / "instances_noisy" / "mapping.json").is_file()


def test_run_commands_on_trained_model(tiny_scene, tmp_path, capsys):
    torch.manual_seed(0)
    cfg = instance_cpu_config(tiny_scene, tmp_path, max_iters=2, rays_per_batch=128)
    cfg.set_timestamp()
    trainer = cfg.setup(local_rank=0, world_size=1)
    trainer.setup()
    cfg.save_config()
    trainer.train()
    config = str(cfg.get_base_dir() / "config.yml")

    assert main(["eval", "--config", config, "--out", str(tmp_path / "ev")]) == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    for key in ("miou", "pq", "consistency"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["num_views"] == 2 and (tmp_path / "ev" / "view_000.png").is_file()

    assert (
        main(
            [
                "extract-grid",
                "--config",
                config,
                "--out",
                str(tmp_path / "g.npz"),
                "--resolution",
                "8",
                "--num-views",
                "2",
            ]
        )
        == 0
    )
    g = np.load(tmp_path / "g.npz")
    assert g["rgbsigma"].shape == (8, 8, 4, 4) and g["instance"].shape == (8, 8, 4)
    assert g["instance"].max() < 4

    np.save(tmp_path / "pts.npy", np.array([[0.0, 0.0, 0.2], [0.5, -0.5, 0.1]]))
    capsys.readouterr()
    assert (
        main(
            [
                "query",
                "--config",
                config,
                "--points",
                str(tmp_path / "pts.npy"),
                "--out",
                str(tmp_path / "q.npz"),
            ]
        )
        == 0
    )
    q = np.load(tmp_path / "q.npz")
    assert q["instance"].shape == (2,) and np.all((q["probability"] > 0) & (q["probability"] <= 1))
    assert "id=" in capsys.readouterr().out

    assert (
        main(
            [
                "export",
                "--config",
                config,
                "--out",
                str(tmp_path / "ply"),
                "--resolution",
                "8",
                "--min-density",
                "0",
                "--with-background",
            ]
        )
        == 0
    )
    plys = list((tmp_path / "ply").glob("instance_*.ply"))
    assert plys and plys[0].read_text().startswith("ply")

    np.save(tmp_path / "bad.npy", np.zeros((3, 2)))
    _assert_cli_error(
        capsys,
        ["query", "--config", config, "--points", str(tmp_path / "bad.npy")],
        "bad.npy",
        "expected an (N, 3) array",
    )
    (tmp_path / "pts.txt").write_text("0 0 0.2\n0.5 -0.5 0.1\n")  # a user's text file, not .npy
    _assert_cli_error(
        capsys,
        ["query", "--config", config, "--points", str(tmp_path / "pts.txt")],
        "pts.txt",
        "not a .npy array file",
    )
    assert build_parser().parse_args(["demo", "--out", "x"]).nerf_iters == 300


def test_part2_verbs_bad_input(tmp_path, capsys):
    (tmp_path / "r.pt").write_text("not a checkpoint")
    np.savez(tmp_path / "g.npz", rgbsigma=np.zeros((8, 8, 4, 4), np.float32))
    _assert_cli_error(
        capsys,
        [
            "rcnn",
            "predict",
            "--ckpt",
            str(tmp_path / "r.pt"),
            "--grid",
            str(tmp_path / "g.npz"),
            "--out",
            str(tmp_path / "m.npz"),
        ],
        "r.pt",
        "not a",
    )
    assert not (tmp_path / "m.npz").exists()
    _assert_cli_error(
        capsys,
        [
            "pipeline",
            "--scene",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path / "run"),
            "--oracle-3d",
            "--panoptic",
            str(tmp_path),
        ],
        "transforms.json",
    )
    _assert_cli_error(
        capsys,
        [
            "masks",
            "--scene",
            str(tmp_path),
            "--model",
            str(tmp_path / "m2f"),
            "--out",
            str(tmp_path / "p"),
        ],
        "m2f",
        "Mask2Former folder not found",
    )
    _assert_cli_error(
        capsys, ["synth-grids", "--out", str(tmp_path / "g"), "--seeds", "5:2"], "5:2"
    )


def test_eval_masks_and_match_cli(tiny_scene, tmp_path, capsys):
    from instance_nerf.data.noisy import write_noisy_panoptic
    from instance_nerf.matching.scene import oracle_masks3d

    write_noisy_panoptic(tiny_scene, tmp_path / "pan", 3, "medium")
    capsys.readouterr()
    assert (
        main(["eval-masks", "--scene", str(tiny_scene), "--panoptic", str(tmp_path / "pan")]) == 0
    )
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= res["pq"] <= 1 and res["views"] == 2
    oracle_masks3d(tiny_scene, tmp_path / "m3d.npz")
    from instance_nerf.data.io import read_npz, save_npz

    g = read_npz(tiny_scene / "scene.npz")["instance_grid"]
    rs = np.zeros((*g.shape, 4), np.float32)
    rs[..., 3] = (g >= 0).astype(np.float32)
    save_npz(
        tmp_path / "grid.npz",
        rgbsigma=rs,
        sigma_is_alpha=np.array(True),
        bbox_min=np.array([-1.05, -1.05, -0.05]),
        bbox_max=np.array([1.0, 1.0, 1.0]),
    )
    assert (
        main(
            [
                "project",
                "--scene",
                str(tiny_scene),
                "--grid",
                str(tmp_path / "grid.npz"),
                "--masks3d",
                str(tmp_path / "m3d.npz"),
                "--out",
                str(tmp_path / "proj"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "match",
                "--scene",
                str(tiny_scene),
                "--panoptic",
                str(tmp_path / "pan"),
                "--projected",
                str(tmp_path / "proj"),
                "--masks3d",
                str(tmp_path / "m3d.npz"),
                "--out",
                str(tmp_path / "matched"),
            ]
        )
        == 0
    )
    meta = json.loads((tmp_path / "matched.json").read_text())
    assert meta["num_instances"] == 4 and len(list((tmp_path / "matched").glob("*.png"))) == 4
    (tmp_path / "pan" / "frame_0000.png").unlink()
    _assert_cli_error(
        capsys,
        [
            "match",
            "--scene",
            str(tiny_scene),
            "--panoptic",
            str(tmp_path / "pan"),
            "--projected",
            str(tmp_path / "proj"),
            "--masks3d",
            str(tmp_path / "m3d.npz"),
            "--out",
            str(tmp_path / "m2"),
        ],
        "pan",
        "no panoptic mask",
    )
