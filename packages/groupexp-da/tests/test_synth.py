"""Synthetic LiDAR simulator: determinism, beam-count effect, info layout, CLI."""

import pickle
from dataclasses import replace

import numpy as np

from groupexp_da.data.synth import DOMAINS, synth_frame, write_domain


def test_frames_are_deterministic_per_seed():
    a_pts, a_inst = synth_frame(DOMAINS["source"], seed=3, index=5)
    b_pts, b_inst = synth_frame(DOMAINS["source"], seed=3, index=5)
    c_pts, _ = synth_frame(DOMAINS["source"], seed=4, index=5)
    np.testing.assert_array_equal(a_pts, b_pts)
    assert a_inst == b_inst
    assert a_pts.shape != c_pts.shape or not np.array_equal(a_pts, c_pts)


def test_beam_count_controls_point_density():
    spec = DOMAINS["source"]
    counts = {}
    for beams in (16, 32, 64):
        s = replace(spec, lidar=replace(spec.lidar, beams=beams, dropout=0.0))
        pts, inst = synth_frame(s, seed=0, index=0)
        counts[beams] = (len(pts), sum(i["num_lidar_pts"] for i in inst))
    # same scene (scene sampling happens before ray casting), more beams -> more points
    assert counts[16][0] < counts[32][0] < counts[64][0]
    assert counts[16][1] < counts[32][1] < counts[64][1]
    assert 1.6 < counts[64][0] / counts[32][0] < 2.4


def test_domains_differ_in_the_named_factors():
    src_pts, src_inst = synth_frame(DOMAINS["source"], 0, 0)
    tgt_pts, tgt_inst = synth_frame(DOMAINS["target"], 0, 0)
    assert src_pts.shape[1] == 4 and tgt_pts.shape[1] == 5
    # ground at minus the sensor height
    assert abs(np.median(src_pts[src_pts[:, 2] < -1.5, 2]) + 1.73) < 0.05
    assert abs(np.median(tgt_pts[tgt_pts[:, 2] < -1.6, 2]) + 1.84) < 0.05
    src_l = np.mean([i["bbox_3d"][3] for i in src_inst])
    tgt_l = np.mean([i["bbox_3d"][3] for i in tgt_inst])
    assert tgt_l > src_l + 0.3


def test_car_points_lie_inside_their_boxes():
    from groupexp_da.data.geometry import points_in_box

    pts, inst = synth_frame(DOMAINS["source"], 1, 2)
    xyz = pts[:, :3].astype(np.float64)
    for i in inst:
        # surface points sit on the faces; range noise (2 cm) needs a small margin
        inside = int(points_in_box(xyz, np.array(i["bbox_3d"]), margin=0.1).sum())
        assert i["num_lidar_pts"] <= inside <= i["num_lidar_pts"] * 1.2 + 5


def test_write_domain_layout(tmp_path):
    paths = write_domain(tmp_path, "target", frames=3, seed=1)
    data = pickle.load(open(paths["train"], "rb"))
    assert data["metainfo"]["categories"] == {"Car": 0}
    assert len(data["data_list"]) == 2
    item = data["data_list"][0]
    f = tmp_path / "points" / item["lidar_points"]["lidar_path"]
    raw = np.fromfile(f, dtype=np.float32)
    assert raw.size % item["lidar_points"]["num_pts_feats"] == 0 and raw.size > 0
    assert item["z_shift"] == 1.8
    assert all(len(i["bbox_3d"]) == 7 and i["bbox_label_3d"] == 0 for i in item["instances"])
    assert not list(tmp_path.rglob("*.tmp"))


def test_synth_cli(tmp_path, capsys):
    from groupexp_da.cli import main

    assert main(["synth", "--out", str(tmp_path), "--domain", "source", "--frames", "2"]) == 0
    assert (tmp_path / "val_infos.pkl").is_file()
    assert (tmp_path / "points" / "000001.bin").is_file()


def test_sector_culled_ray_casting_equals_dense():
    from groupexp_da.data import synth

    spec = DOMAINS["source"]
    rng = np.random.default_rng(0)
    scene = synth.make_scene(spec.scene, -1.73, rng)
    dirs, _ = synth.ray_directions(replace(spec.lidar, azimuth_steps=256, beams=16))
    parts, _ = synth.car_parts(scene["cars"])
    boxes = np.vstack([parts, scene["solids"], [[0.5, 0.0, -1.73, 3.0, 3.0, 2.0, 0.3]]])
    dense = synth._ray_boxes_dense(dirs, boxes)
    assert np.isfinite(dense).any()
    np.testing.assert_array_equal(synth._ray_boxes(dirs, boxes), dense)
