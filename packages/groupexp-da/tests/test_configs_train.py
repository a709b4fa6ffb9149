"""Shipped configs build with mmdet3d's registries; a CPU PointPillars step lowers the loss."""

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper

from groupexp_da.data.io import GroupExpError
from groupexp_da.engine.config import CONFIG_DIR, load_config, resolve_config

SHIPPED = sorted(p.stem for p in CONFIG_DIR.glob("*.py"))


def _register():
    from mmdet3d.utils import register_all_modules

    import groupexp_da.register  # noqa: F401

    register_all_modules(init_default_scope=True)


@pytest.mark.parametrize("name", SHIPPED)
def test_config_builds_model_and_pipeline(name):
    from mmdet3d.registry import MODELS, TRANSFORMS

    _register()
    cfg = Config.fromfile(str(resolve_config(name)))
    assert "groupexp_da.register" in cfg.custom_imports["imports"]
    if "spconv" in str(cfg.model) or "SparseEncoder" in str(cfg.model):
        assert "second" in name  # SECOND needs sparse conv; the model is built on GPU only
    else:
        model = MODELS.build(cfg.model)
        assert sum(p.numel() for p in model.parameters()) > 0
    for t in cfg.test_dataloader.dataset.pipeline:
        TRANSFORMS.build(t)
    assert cfg.val_evaluator.type == "CarAPMetric"


@pytest.mark.parametrize("name", SHIPPED)
def test_grid_is_consistent_where_the_shared_model_bases_are_overridden(name):
    """The model bases (_base_/models/) hold literals; a config on another grid must override
    every key that depends on it: range and voxel size agree everywhere, the BEV/sparse shape
    equals range / voxel size, and the anchors span the range."""
    m = Config.fromfile(str(resolve_config(name))).model
    layer = m.data_preprocessor.voxel_layer
    pcr, vox = np.array(layer.point_cloud_range), np.array(layer.voxel_size)
    cells = np.round((pcr[3:] - pcr[:3]) / vox).astype(int)  # x, y, z
    if m.voxel_encoder.type == "PillarFeatureNet":
        assert m.voxel_encoder.point_cloud_range == layer.point_cloud_range
        assert m.voxel_encoder.voxel_size == layer.voxel_size
        assert list(m.middle_encoder.output_shape) == [cells[1], cells[0]]
    else:
        assert list(m.middle_encoder.sparse_shape) == [cells[2] + 1, cells[1], cells[0]]
    rng = np.array(m.bbox_head.anchor_generator.ranges[0])
    assert np.allclose(rng[[0, 1, 3, 4]], pcr[[0, 1, 3, 4]])


def test_unknown_config_is_a_clear_error():
    with pytest.raises(GroupExpError, match="shipped"):
        resolve_config("no_such_config")


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory):
    from groupexp_da.data.synth import write_domain

    root = tmp_path_factory.mktemp("synth")
    write_domain(root / "source", "source", 6, seed=0)
    write_domain(root / "target", "target", 5, seed=1)
    return root


def test_pointpillars_cpu_steps_lower_the_loss(synth_data):
    from mmdet3d.registry import DATASETS, MODELS

    _register()
    cfg = load_config(
        "pointpillars_synth_source_only_cpu",
        source=str(synth_data / "source"),
        target=str(synth_data / "target"),
    )
    ds = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(ds) >= 4
    torch.manual_seed(0)
    np.random.seed(0)  # noqa: NPY002  (mmdet3d augmentations use the global RNG)
    model = MODELS.build(cfg.model)
    model.train()
    batch = pseudo_collate([ds[i] for i in range(2)])
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=2e-3))
    losses = []
    for _ in range(8):
        out = model.train_step(batch, optim)
        losses.append(float(sum(v for k, v in out.items() if k.startswith("loss"))))
    assert np.isfinite(losses).all()
    assert np.mean(losses[-2:]) < 0.7 * losses[0], losses


def test_synthetic_model_predicts_on_real_frames(synth_data, lidar_fixtures, fixture_view):
    """Real KITTI / nuScenes / Waymo frames go through the package pipelines (xyz, z-shift)
    into a PointPillars trained for a few steps on the synthetic source, and the KITTI
    prediction is scored by CarAPMetric with mmdet3d's image-projection filtering."""
    from mmdet3d.registry import DATASETS, METRICS, MODELS

    from groupexp_da.data.transforms import CAR_NAMES, Z_SHIFT

    _register()
    cfg = load_config(
        "pointpillars_synth_source_only_cpu",
        source=str(synth_data / "source"),
        target=str(synth_data / "target"),
    )
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.train()
    train = DATASETS.build(cfg.train_dataloader.dataset)
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=2e-3))
    for i in range(3):
        model.train_step(pseudo_collate([train[i]]), optim)
    model.eval()
    real = {
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
    }
    for name, (typ, root, ann, prefix) in real.items():
        pipeline = [dict(t) for t in cfg.test_pipeline]
        pipeline[1] = dict(type="ShiftZ", shift=Z_SHIFT[name])
        ds = DATASETS.build(
            dict(
                type=typ,
                data_root=str(root),
                ann_file=ann,
                data_prefix=dict(pts=prefix, sweeps=prefix),
                pipeline=pipeline,
                metainfo=dict(classes=list(CAR_NAMES[name])),
                modality=dict(use_lidar=True, use_camera=False),
                test_mode=True,
            )
        )
        with torch.no_grad():
            out = model.test_step(pseudo_collate([ds[0]]))[0]
        assert out.metainfo["z_shift"] == Z_SHIFT[name]
        pred = out.pred_instances_3d
        assert torch.isfinite(pred.bboxes_3d.tensor).all(), name
        if name == "kitti":
            metric = METRICS.build(
                dict(type="CarAPMetric", ann_file=str(root / ann), gt_format="kitti")
            )
            sample = out.to_dict()
            assert sample["sample_idx"] == 0  # position in the info list
            metric.process({}, [sample])
            res = metric.evaluate(1)
            assert set(res) >= {"car/Car_3D_R40_moderate", "car/Car_BEV_R11_easy"}
            assert all(0.0 <= v <= 100.0 for v in res.values())


def test_pseudo_label_infos_train_with_ignore_band(synth_data, tmp_path):
    """A pseudo-label pkl (positives 0, ignore band -1, extra score/miss fields) goes through
    the ST3D training pipeline into a PointPillars train step."""
    import pickle

    from mmdet3d.registry import DATASETS, MODELS

    from groupexp_da.engine.pseudo import to_instances

    _register()
    cfg = load_config(
        "pointpillars_synth_st3d_cpu",
        source=str(synth_data / "source"),
        target=str(synth_data / "target"),
    )
    data = pickle.load(open(synth_data / "target" / "train_infos.pkl", "rb"))
    for info in data["data_list"]:
        boxes = np.array([i["bbox_3d"] for i in info["instances"]]).reshape(-1, 7)
        labels = np.where(np.arange(len(boxes)) % 2 == 0, 0, -1)
        info["instances"] = to_instances(
            {
                "boxes": boxes,
                "scores": np.full(len(boxes), 0.7),
                "miss": np.zeros(len(boxes), int),
                "labels": labels,
            }
        )
    pk = tmp_path / "pseudo.pkl"
    pickle.dump(data, open(pk, "wb"))
    ds_cfg = dict(cfg.st3d_target_dataset)
    ds_cfg.update(ann_file=str(pk), pipeline=cfg.st3d_train_pipeline)
    ds = DATASETS.build(ds_cfg)
    item = ds[0]
    labels = item["data_samples"].gt_instances_3d.labels_3d
    assert (labels == -1).any() and (labels == 0).any()
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.train()
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    out = model.train_step(pseudo_collate([item, ds[1]]), optim)
    assert all(torch.isfinite(v).all() for v in out.values())


def test_ros_only_in_the_st3d_stage1_config():
    def has_ros(name):
        cfg = Config.fromfile(str(resolve_config(name)))
        return any(
            t["type"] == "RandomObjectScaling" for t in cfg.train_dataloader.dataset.pipeline
        )

    assert not has_ros("pointpillars_synth_source_only_cpu")  # the paper's plain baseline
    assert not has_ros("pointpillars_synth_oracle_cpu")
    assert has_ros("pointpillars_synth_ros_cpu")


@pytest.mark.parametrize("kind", ["cosine", "constant"])
def test_st3d_round_schedule(kind):
    from mmengine.optim import build_optim_wrapper
    from mmengine.optim.scheduler import ConstantLR, CosineAnnealingLR

    from groupexp_da.engine.st3d import round_schedule

    sched = round_schedule(epochs=2, lr=2e-4, kind=kind)
    model = torch.nn.Linear(2, 1)
    optim = build_optim_wrapper(model, dict(optimizer=dict(type="AdamW", lr=2e-4)))
    s = dict(sched[0])
    cls = {"CosineAnnealingLR": CosineAnnealingLR, "ConstantLR": ConstantLR}[s.pop("type")]
    if s.pop("convert_to_iter_based", False):
        s = dict(s, by_epoch=False, T_max=s["T_max"] * 10, end=s["end"] * 10)  # 10 iters/epoch
        steps = 20
    else:
        steps = 2
    sch = cls(optim, **s)
    lrs = []
    for _ in range(steps):
        optim.step()
        sch.step()
        lrs.append(optim.get_lr()["lr"][0])
    if kind == "cosine":  # decays monotonically to ~1 % of lr by the end of the round
        assert all(a >= b for a, b in zip(lrs, lrs[1:]))
        assert 2e-6 <= lrs[-1] < 0.02 * 2e-4
    else:
        assert lrs == pytest.approx([2e-4] * steps)


def test_st3d_round_schedule_rejects_unknown():
    from groupexp_da.engine.st3d import round_schedule

    with pytest.raises(ValueError, match="schedule"):
        round_schedule(2, 1e-3, "step")
