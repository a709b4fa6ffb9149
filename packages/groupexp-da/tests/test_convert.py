"""``convert kitti`` runs mmdet3d's own converter on the real 3-frame KITTI sample (no test
split) and leaves v2 infos that the package's dataset reads."""

import pickle

import pytest

from groupexp_da.cli import main


def test_convert_kitti_mini_without_testing_split(lidar_fixtures, tmp_path, capsys):
    root = lidar_fixtures / "kitti_mini"
    if not root.is_dir():
        pytest.skip("kitti_mini fixture missing")
    out = tmp_path / "kitti"
    assert main(["convert", "kitti", "--root", str(root), "--out", str(out)]) == 0
    for split in ("train", "val", "trainval"):
        data = pickle.load(open(out / f"kitti_infos_{split}.pkl", "rb"))
        assert isinstance(data, dict) and "data_list" in data  # v2, not the old list format
    train = pickle.load(open(out / "kitti_infos_train.pkl", "rb"))["data_list"]
    ids = (root / "ImageSets" / "train.txt").read_text().split()
    assert [f"{d['sample_idx']:06d}" for d in train] == ids
    cars = [i for d in train for i in d["instances"] if i["bbox_label_3d"] == 2]  # KITTI 'Car'
    assert cars and all(i["num_lidar_pts"] > 0 for i in cars)
    assert not (out / "kitti_infos_test.pkl").exists()
    assert len(list((out / "training" / "velodyne_reduced").glob("*.bin"))) == 3
    assert not any(p.name == "velodyne_reduced" for p in (root / "training").iterdir())
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["convert", "kitti", "--root", str(tmp_path / "nope"), "--out", str(out)])
    assert e.value.code == 2
    assert "dataset root not found" in capsys.readouterr().err


def test_convert_waymo_fixture_and_nuscenes_without_tables(lidar_fixtures, tmp_path, capsys):
    """The Waymo sample's infos are already v2: linked into ``out`` and readable. The nuScenes
    sample has one sweep and no ``v1.0-*`` tables, which mmdet3d's converter needs: one line."""
    root = lidar_fixtures / "waymo_kitti_format"
    out = tmp_path / "waymo"
    assert main(["convert", "waymo", "--root", str(root), "--out", str(out)]) == 0
    for split in ("train", "val"):
        data = pickle.load(open(out / f"waymo_infos_{split}.pkl", "rb"))
        assert "data_list" in data and len(data["data_list"]) >= 1
    assert (out / "training").resolve() == (root / "training").resolve()
    (tmp_path / "empty").mkdir()
    capsys.readouterr()
    for argv, needle in (
        (["nuscenes", "--root", str(lidar_fixtures)], "v1.0-trainval"),
        (["waymo", "--root", str(tmp_path / "empty")], "no waymo_infos"),
    ):
        with pytest.raises(SystemExit) as e:
            main(["convert", *argv, "--out", str(tmp_path / "o")])
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err
