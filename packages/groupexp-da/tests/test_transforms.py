"""Registered alignment transforms: round trips, bad input, real fixture frames."""

import pickle

import numpy as np
import pytest
import torch
from mmdet3d.registry import TRANSFORMS
from mmdet3d.structures import LiDARInstance3DBoxes
from mmdet3d.structures.points import LiDARPoints

import groupexp_da.register  # noqa: F401
from groupexp_da.data.geometry import points_in_box
from groupexp_da.data.transforms import undo_z_shift


def _results(n_pts=2000, seed=0):
    rng = np.random.default_rng(seed)
    boxes = np.array([[10, 0, -1.7, 4.0, 1.6, 1.5, 0.3], [20, 5, -1.7, 3.8, 1.7, 1.4, -1.0]])
    pts = [rng.uniform([-0.49, -0.49, 0.01], [0.49, 0.49, 0.99], (200, 3)) * b[3:6] for b in boxes]
    world = []
    for b, p in zip(boxes, pts):
        c, s = np.cos(b[6]), np.sin(b[6])
        world.append(
            np.c_[
                c * p[:, 0] - s * p[:, 1] + b[0], s * p[:, 0] + c * p[:, 1] + b[1], p[:, 2] + b[2]
            ]
        )
    bg = rng.uniform([0, -30, -1.8], [50, 30, -1.6], (n_pts, 3))
    bg = bg[~np.any([points_in_box(bg, b, 0.3) for b in boxes], 0)]
    all_pts = np.vstack(world + [bg]).astype(np.float32)
    return {
        "points": LiDARPoints(all_pts, points_dim=3),
        "gt_bboxes_3d": LiDARInstance3DBoxes(boxes.astype(np.float32)),
        "gt_labels_3d": np.array([0, 0]),
    }


def test_shift_z_round_trip():
    r = _results()
    p0 = r["points"].tensor.clone()
    b0 = r["gt_bboxes_3d"].tensor.clone()
    out = TRANSFORMS.build(dict(type="ShiftZ", shift=1.6))(r)
    assert out["z_shift"] == 1.6
    torch.testing.assert_close(out["points"].tensor[:, 2], p0[:, 2] + 1.6)
    torch.testing.assert_close(out["points"].tensor[:, :2], p0[:, :2])
    torch.testing.assert_close(out["gt_bboxes_3d"].tensor[:, 2], b0[:, 2] + 1.6)
    back = undo_z_shift(out["gt_bboxes_3d"], out["z_shift"])
    torch.testing.assert_close(back.tensor, b0)
    arr = undo_z_shift(out["gt_bboxes_3d"].tensor.numpy(), 1.6)
    np.testing.assert_allclose(arr, b0.numpy(), atol=1e-6)


def test_shift_z_reads_info_value():
    r = _results()
    r["z_shift"] = 1.8
    z0 = r["points"].tensor[:, 2].clone()
    out = TRANSFORMS.build(dict(type="ShiftZ"))(r)
    torch.testing.assert_close(out["points"].tensor[:, 2], z0 + 1.8)


def test_unify_car_class_and_range():
    r = _results()
    r["gt_labels_3d"] = np.array([0, -1])
    out = TRANSFORMS.build(dict(type="UnifyCarClass"))(dict(r))
    assert out["gt_labels_3d"].tolist() == [0] and len(out["gt_bboxes_3d"]) == 1
    keep = TRANSFORMS.build(dict(type="UnifyCarClass", keep_ignore=True))(dict(r))
    assert keep["gt_labels_3d"].tolist() == [0, -1]
    rng_out = TRANSFORMS.build(
        dict(type="UnifyPointRange", point_cloud_range=[0, -3, -3, 15, 3, 3])
    )(_results())
    pts = rng_out["points"].tensor.numpy()
    assert pts[:, 0].max() < 15 and np.abs(pts[:, 1]).max() < 3
    assert len(rng_out["gt_bboxes_3d"]) == 1 and len(rng_out["gt_labels_3d"]) == 1


def test_stat_normalize_resizes_boxes_and_their_points():
    r = _results()
    b0 = r["gt_bboxes_3d"].tensor.numpy().copy()
    p0 = r["points"].tensor.numpy().copy()
    n_in = [points_in_box(p0.astype(np.float64), b).sum() for b in b0]
    out = TRANSFORMS.build(
        dict(type="StatNormalize", source_mean=[3.88, 1.63, 1.53], target_mean=[4.63, 1.96, 1.74])
    )(r)
    b1 = out["gt_bboxes_3d"].tensor.numpy()
    np.testing.assert_allclose(b1[:, 3:6] - b0[:, 3:6], [[0.75, 0.33, 0.21]] * 2, atol=1e-5)
    np.testing.assert_allclose(b1[:, [0, 1, 2, 6]], b0[:, [0, 1, 2, 6]], atol=1e-6)
    p1 = out["points"].tensor.numpy().astype(np.float64)
    assert [points_in_box(p1, b, 1e-4).sum() for b in b1] == n_in  # the car moved with its box
    # background points untouched
    far = np.abs(p0[:, 0] - 30) > 25
    np.testing.assert_allclose(p1[far], p0[far], atol=1e-5)


def test_random_object_scaling_is_uniform_per_object():
    r = _results()
    b0 = r["gt_bboxes_3d"].tensor.numpy().copy()
    out = TRANSFORMS.build(dict(type="RandomObjectScaling", scale_range=[0.8, 1.2], seed=1))(r)
    ratio = out["gt_bboxes_3d"].tensor.numpy()[:, 3:6] / b0[:, 3:6]
    assert np.allclose(ratio, ratio[:, :1], atol=1e-5)  # same factor on l, w, h
    assert np.all((ratio > 0.8) & (ratio < 1.2)) and not np.allclose(ratio, 1)


def _write_info(tmp_path, pts: np.ndarray | None, dim: int, name="f.bin"):
    if pts is not None:
        pts.astype(np.float32).tofile(tmp_path / name)
    return {"lidar_points": {"lidar_path": str(tmp_path / name), "num_pts_feats": dim}}


def test_load_points_xyz_and_bad_input(tmp_path):
    load = TRANSFORMS.build(dict(type="LoadPointsXYZ"))
    pts = np.random.default_rng(0).normal(size=(100, 5))
    out = load(_write_info(tmp_path, pts, 5))
    assert out["points"].tensor.shape == (100, 3)
    np.testing.assert_allclose(out["points"].tensor.numpy(), pts[:, :3], rtol=1e-6)
    with pytest.raises(ValueError, match="not a multiple"):
        load(_write_info(tmp_path, pts[:99], 4, "odd.bin"))
    with pytest.raises(FileNotFoundError, match="missing.bin"):
        load(_write_info(tmp_path, None, 4, "missing.bin"))
    with pytest.raises(ValueError, match="empty point cloud"):
        load(_write_info(tmp_path, np.zeros((0, 4)), 4, "empty.bin"))
    bad = pts.copy()
    bad[3, 1] = np.nan
    with pytest.warns(UserWarning, match="dropping 1 NaN"):
        out = load(_write_info(tmp_path, bad, 5, "nan.bin"))
    assert len(out["points"]) == 99
    with pytest.raises(ValueError, match="NaN"):
        TRANSFORMS.build(dict(type="LoadPointsXYZ", nan="raise"))(
            _write_info(tmp_path, bad, 5, "nan.bin")
        )


@pytest.mark.parametrize("which", ["kitti", "nuscenes", "waymo"])
def test_real_frames_load_with_dataset_shift(lidar_fixtures, fixture_view, which):
    from mmdet3d.registry import DATASETS
    from mmdet3d.utils import register_all_modules

    from groupexp_da.data.transforms import CAR_NAMES, META_KEYS, Z_SHIFT

    register_all_modules(init_default_scope=True)
    spec = {
        "kitti": ("KittiDataset", lidar_fixtures, "kitti_000008.pkl", str(fixture_view)),
        "nuscenes": (
            "NuScenesDataset",
            lidar_fixtures,
            "nuscenes_n015-2018-07-24-11-22-45+0800.pkl",
            str(fixture_view),
        ),
        "waymo": (
            "WaymoDataset",
            lidar_fixtures / "waymo_kitti_format",
            "waymo_infos_val.pkl",
            "training/velodyne",
        ),
    }[which]
    pipeline = [
        dict(type="LoadPointsXYZ"),
        dict(type="LoadAnnotations3D", with_bbox_3d=True, with_label_3d=True),
        dict(type="ShiftZ", shift=Z_SHIFT[which]),
        dict(type="UnifyCarClass"),
        dict(
            type="Pack3DDetInputs",
            keys=["points", "gt_bboxes_3d", "gt_labels_3d"],
            meta_keys=META_KEYS,
        ),
    ]
    kw = dict(
        type=spec[0],
        data_root=str(spec[1]),
        ann_file=spec[2],
        data_prefix=dict(pts=spec[3], sweeps=spec[3]),
        pipeline=pipeline,
        metainfo=dict(classes=list(CAR_NAMES[which])),
        modality=dict(use_lidar=True, use_camera=False),
        test_mode=False,
    )
    if which == "waymo":
        kw.update(load_interval=1, cam_sync_instances=False)
    ds = DATASETS.build(kw)
    raw_info = pickle.load(open(spec[1] / spec[2], "rb"))["data_list"][0]
    pts_raw = np.fromfile(
        spec[1] / spec[3] / raw_info["lidar_points"]["lidar_path"], dtype=np.float32
    ).reshape(-1, raw_info["lidar_points"]["num_pts_feats"])
    item = ds[0]
    pts = item["inputs"]["points"].numpy()
    assert pts.shape == (len(pts_raw), 3)
    np.testing.assert_allclose(pts[:, 2], pts_raw[:, 2] + Z_SHIFT[which], atol=1e-5)
    gt = item["data_samples"].gt_instances_3d
    assert item["data_samples"].metainfo["z_shift"] == Z_SHIFT[which]
    assert len(gt.labels_3d) >= 1 and (gt.labels_3d == 0).all()
    # after the shift the car nearest to the sensor stands near z = 0 (road level) in every
    # dataset (the nuScenes sweep is on a slope: far cars sit metres lower or higher)
    boxes = gt.bboxes_3d.tensor.numpy()
    near = np.argmin(np.hypot(boxes[:, 0], boxes[:, 1]))
    assert abs(boxes[near, 2]) < 0.8, boxes[near]  # unshifted it would be ~ -1.7 m
