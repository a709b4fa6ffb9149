"""The stack works: mmdet3d's shipped PointPillars KITTI-car config trains one CPU step and
predicts on the real KITTI frame 000008."""

import copy
from pathlib import Path

import mmdet3d
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper

CFG = (
    Path(mmdet3d.__file__).parent
    / ".mim"
    / "configs"
    / "pointpillars"
    / "pointpillars_hv_secfpn_8xb6-160e_kitti-3d-car.py"
)


def _dataset(root: Path, view: Path, pipeline, test_mode: bool):
    from mmdet3d.registry import DATASETS

    return DATASETS.build(
        dict(
            type="KittiDataset",
            data_root=str(root),
            ann_file="kitti_000008.pkl",
            data_prefix=dict(pts=str(view)),
            pipeline=pipeline,
            metainfo=dict(classes=["Car"]),
            modality=dict(use_lidar=True, use_camera=False),
            test_mode=test_mode,
            box_type_3d="LiDAR",
        )
    )


def test_pointpillars_kitti_car_train_step_and_predict(lidar_fixtures, fixture_view):
    from mmdet3d.registry import MODELS
    from mmdet3d.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    assert CFG.is_file(), f"mmdet3d wheel ships no config at {CFG}"
    cfg = Config.fromfile(str(CFG))
    pcr = cfg.point_cloud_range
    train_pipeline = [
        dict(type="LoadPointsFromFile", coord_type="LIDAR", load_dim=4, use_dim=4),
        dict(type="LoadAnnotations3D", with_bbox_3d=True, with_label_3d=True),
        dict(type="PointsRangeFilter", point_cloud_range=pcr),
        dict(type="ObjectRangeFilter", point_cloud_range=pcr),
        dict(type="Pack3DDetInputs", keys=["points", "gt_bboxes_3d", "gt_labels_3d"]),
    ]
    test_pipeline = copy.deepcopy(cfg.test_pipeline)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    train_ds = _dataset(lidar_fixtures, fixture_view, train_pipeline, test_mode=False)
    sample = train_ds[0]
    gt = sample["data_samples"].gt_instances_3d
    assert len(gt.labels_3d) >= 5 and (gt.labels_3d == 0).all()  # the frame's cars
    model.train()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3))
    losses = model.train_step(pseudo_collate([sample]), optim)
    assert {"loss_cls", "loss_bbox", "loss_dir"} <= set(losses)
    assert all(torch.isfinite(v).all() for v in losses.values())

    model.eval()
    test_ds = _dataset(lidar_fixtures, fixture_view, test_pipeline, test_mode=True)
    with torch.no_grad():
        out = model.test_step(pseudo_collate([test_ds[0]]))
    pred = out[0].pred_instances_3d
    assert pred.bboxes_3d.tensor.shape[1] == 7
    assert len(pred.scores_3d) == len(pred.labels_3d) <= cfg.model.test_cfg.max_num
