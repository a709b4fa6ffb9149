"""The registered CarAPMetric: z-shift undo, difficulties, KITTI GT conversion on the real frame."""

import pickle

import numpy as np
import pytest
import torch
from mmdet3d.registry import METRICS
from mmdet3d.structures import Box3DMode, CameraInstance3DBoxes, LiDARInstance3DBoxes

import groupexp_da.register  # noqa: F401
from groupexp_da.data.geometry import points_in_box
from groupexp_da.data.synth import write_domain
from groupexp_da.eval.gt import gt_frame


@pytest.fixture(scope="module")
def target_infos(tmp_path_factory):
    root = tmp_path_factory.mktemp("tgt")
    # the val split: info sample_idx (2..19) differs from the dataset position (0..17)
    return write_domain(root, "target", 20, seed=2, val_fraction=0.9)["val"]


def _samples(ann, shift, jitter=0.0, seed=0):
    rng = np.random.default_rng(seed)
    data = pickle.load(open(ann, "rb"))
    out = []
    for pos, info in enumerate(data["data_list"]):
        b = np.array([i["bbox_3d"] for i in info["instances"]], np.float32).reshape(-1, 7)
        b[:, 2] += shift  # predictions live in the shifted frame
        b[:, 0] += rng.normal(0, jitter, len(b))
        out.append(
            {
                "sample_idx": pos,
                "z_shift": shift,
                "pred_instances_3d": {
                    "bboxes_3d": LiDARInstance3DBoxes(torch.from_numpy(b)),
                    "scores_3d": torch.linspace(0.9, 0.3, len(b)),
                    "labels_3d": torch.zeros(len(b), dtype=torch.long),
                },
            }
        )
    return out


def _run(metric, samples):
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def test_metric_undoes_z_shift_and_scores_perfect_predictions(target_infos):
    n_gt = sum(len(i["instances"]) for i in pickle.load(open(target_infos, "rb"))["data_list"])
    assert n_gt >= 80  # enough for all 41 recall sample points
    metric = METRICS.build(
        dict(
            type="CarAPMetric", ann_file=str(target_infos), gt_format="lidar", pcd_limit_range=None
        )
    )
    res = _run(metric, _samples(target_infos, shift=1.8))
    for k in ("Car_3D_R40_easy", "Car_3D_R40_moderate", "Car_BEV_R11_hard"):
        assert res[f"car/{k}"] == pytest.approx(100.0), k
    # forcing no undo: boxes float 1.8 m above the GT -> BEV still perfect, 3D zero
    bad = METRICS.build(
        dict(
            type="CarAPMetric",
            ann_file=str(target_infos),
            gt_format="lidar",
            pcd_limit_range=None,
            z_shift=0.0,
        )
    )
    res = _run(bad, _samples(target_infos, shift=1.8))
    assert res["car/Car_BEV_R40_moderate"] == pytest.approx(100.0)
    assert res["car/Car_3D_R40_moderate"] == 0.0


def test_metric_degrades_with_localisation_noise(target_infos):
    res = {}
    for jitter in (0.0, 0.4, 1.2):
        m = METRICS.build(
            dict(
                type="CarAPMetric",
                ann_file=str(target_infos),
                gt_format="lidar",
                all_easy=True,
                pcd_limit_range=None,
            )
        )
        res[jitter] = _run(m, _samples(target_infos, 1.8, jitter))["car/Car_3D_R40_easy"]
    assert res[0.0] == pytest.approx(100.0)
    assert res[0.0] > res[0.4] > res[1.2]


def test_kitti_gt_conversion_on_real_frame(lidar_fixtures):
    data = pickle.load(open(lidar_fixtures / "kitti_000008.pkl", "rb"))
    info = data["data_list"][0]
    gt = gt_frame(info, data["metainfo"], "kitti")
    assert list(gt["names"]).count("Car") == 6 and list(gt["names"]).count("DontCare") == 4
    cars = [i for i in info["instances"] if i["bbox_label_3d"] == 2]
    cam = CameraInstance3DBoxes(np.array([i["bbox_3d"] for i in cars], np.float32))
    ref = cam.convert_to(
        Box3DMode.LIDAR, np.linalg.inv(np.array(info["images"]["CAM2"]["lidar2cam"], np.float32))
    ).tensor.numpy()
    ours = gt["boxes"][gt["names"] == "Car"]
    np.testing.assert_allclose(ours[:, :6], ref[:, :6], atol=1e-4)
    np.testing.assert_allclose(np.cos(ours[:, 6] - ref[:, 6]), 1.0, atol=1e-6)
    # the converted boxes hold the real points the KITTI converter counted
    pts = np.fromfile(lidar_fixtures / "kitti_000008.bin", np.float32).reshape(-1, 4)
    for box, inst in zip(ours, cars):
        n = int(points_in_box(pts[:, :3].astype(np.float64), box).sum())
        assert abs(n - inst["num_lidar_pts"]) <= max(5, 0.05 * inst["num_lidar_pts"])
