"""GroupEXP-DA end to end: stage 1 with the group head, ``adapt`` rounds with resume, the
recall heatmap, bad pseudo-label files, nuScenes / Waymo GT through CarAPMetric."""

import json
import pickle

import numpy as np
import pytest
import torch

from groupexp_da.cli import main
from groupexp_da.data.io import GroupExpError


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    from groupexp_da.data.synth import write_domain

    root = tmp_path_factory.mktemp("pair")
    write_domain(root / "source", "source", 6, seed=0, val_fraction=0.3)
    write_domain(root / "target", "target", 6, seed=1, val_fraction=0.3)
    return root


@pytest.fixture(scope="module")
def stage1(pair):
    from groupexp_da.engine.config import build_runner, load_config
    from groupexp_da.engine.demo import set_epochs

    work = pair / "stage1"
    cfg = load_config(
        "pointpillars_synth_groupexp_src_cpu",
        source=str(pair / "source"),
        target=str(pair / "target"),
        work_dir=str(work),
    )
    set_epochs(cfg, 1)
    cfg.train_cfg.val_interval = 10**6
    build_runner(cfg).train()
    return work


@pytest.mark.slow
def test_stage1_initialises_groups_and_writes_groups_json(stage1):
    from groupexp_da.engine.checkpoint import load_state_dict

    state = load_state_dict(stage1 / "epoch_1.pth")
    assert bool(state["groups.initialized"])
    assert state["groups.mu"].shape == (3, 512)
    assert torch.isclose(state["groups.weight"].sum(), torch.tensor(1.0), atol=1e-4)
    groups = json.loads((stage1 / "groups.json").read_text())
    assert groups[-1]["epoch"] == 1
    assert sum(g["objects"] for g in groups[-1]["groups"]) > 0
    assert all(g["target_share"] in (0.0, None) for g in groups[-1]["groups"])  # source only


@pytest.mark.slow
def test_adapt_rounds_resume_and_group_field(pair, stage1, capsys):
    """~1.5 min unloaded on 2 cores (stage 1 + three adapt calls + recall)."""
    work = pair / "adapt"
    common = [
        "adapt",
        "pointpillars_synth_groupexp_cpu",
        "--source-ckpt",
        str(stage1 / "epoch_1.pth"),
        "--source",
        str(pair / "source"),
        "--target",
        str(pair / "target"),
        "--work-dir",
        str(work),
        "--epochs-per-round",
        "1",
        # a 2-iteration model scores below every real threshold: keep all its boxes so
        # the union labels exist (mechanics, not quality)
        "--cfg-options",
        "model.test_cfg.score_thr=0.0",
        "st3d.neg_thresh=0.0",
        "st3d.group_score_thresh=0.05",
    ]
    assert (
        main(
            common[: common.index("--cfg-options")]
            + ["--rounds", "1"]
            + common[common.index("--cfg-options") :]
        )
        == 0
    )
    r0 = work / "round_0" / "final.pth"
    mtime = r0.stat().st_mtime_ns
    labels = pickle.load(open(work / "round_0" / "pseudo_labels.pkl", "rb"))
    inst = [i for f in labels["data_list"] for i in f["instances"]]
    assert inst and all("group" in i for i in inst)
    assert {i["group"] for i in inst} <= {0, 1, 2, 3}
    assert labels["metainfo"]["pseudo_labels"]["grouped"] is True
    # the run "stopped" after round 0; asking for 2 rounds continues from there
    more = (
        common[: common.index("--cfg-options")]
        + ["--rounds", "2"]
        + common[common.index("--cfg-options") :]
    )
    assert main(more) == 0
    assert r0.stat().st_mtime_ns == mtime  # round 0 not redone
    hist = json.loads((work / "history.json").read_text())
    assert [h["round"] for h in hist] == [-1, 0, 1]
    stats = hist[-1]["labels"]
    assert stats["grouped"] and "quality_bev_iou_0.7" in stats
    assert (work / "round_1" / "train" / "groups.json").exists()
    # a killed round (labels written, no 'done') resumes its training
    (work / "round_1" / "done").unlink()
    assert main(more) == 0
    assert len(json.loads((work / "history.json").read_text())) == 4
    # recall heatmap of the detections and of the pseudo labels
    out = pair / "recall"
    assert (
        main(
            [
                "recall",
                "--info",
                str(pair / "target" / "train_infos.pkl"),
                "--checkpoint",
                str(work / "round_1" / "final.pth"),
                "--config",
                "pointpillars_synth_groupexp_cpu",
                "--pseudo",
                str(work / "round_1" / "pseudo_labels.pkl"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rec = json.loads((out / "recall.json").read_text())
    assert set(rec) == {"detections", "pseudo labels"}
    assert np.array(rec["detections"]["count"]).sum() == rec["detections"]["gt"] > 0
    assert (out / "recall_heatmap.png").stat().st_size > 10_000


def test_pseudo_labels_of_another_dataset_are_rejected(pair, tmp_path):
    from groupexp_da.engine.st3d import _check_prev

    infos = pickle.load(open(pair / "target" / "train_infos.pkl", "rb"))["data_list"]
    with pytest.raises(GroupExpError, match="frames of pseudo labels"):
        _check_prev(tmp_path / "p.pkl", infos[:-1], infos, "t.pkl")
    other = [dict(i, sample_idx=i["sample_idx"] + 100) for i in infos]
    with pytest.raises(GroupExpError, match="sample_idx"):
        _check_prev(tmp_path / "p.pkl", other, infos, "t.pkl")


def _perfect(data, box_fn):
    out = []
    for pos, info in enumerate(data["data_list"]):
        b = box_fn(info).astype(np.float32)
        out.append(
            {
                "sample_idx": pos,
                "z_shift": 0.0,
                "pred_instances_3d": {
                    "bboxes_3d": torch.from_numpy(b),
                    "scores_3d": torch.linspace(0.9, 0.5, len(b)),
                    "labels_3d": torch.zeros(len(b), dtype=torch.long),
                },
            }
        )
    return out


class _Boxes:
    def __init__(self, t):
        self.tensor = t


@pytest.mark.parametrize(
    "fmt,pkl",
    [
        ("nuscenes", "nuscenes_n015-2018-07-24-11-22-45+0800.pkl"),
        ("waymo", "waymo_kitti_format/waymo_infos_train.pkl"),
    ],
)
def test_car_ap_metric_on_real_nuscenes_and_waymo_gt(lidar_fixtures, fmt, pkl):
    from mmdet3d.registry import METRICS

    import groupexp_da.register  # noqa: F401
    from groupexp_da.eval.gt import gt_frame

    ann = lidar_fixtures / pkl
    data = pickle.load(open(ann, "rb"))
    cars = [gt_frame(i, data["metainfo"], fmt) for i in data["data_list"]]
    n_cars = sum(int((c["names"] == "Car").sum()) for c in cars)
    assert n_cars == (8 if fmt == "nuscenes" else 1)
    if fmt == "nuscenes":  # gravity centre -> bottom centre
        raw = np.array([i["bbox_3d"] for i in data["data_list"][0]["instances"]])
        assert np.allclose(cars[0]["boxes"][:, 2], raw[:, 2] - raw[:, 5] / 2)

    def boxes(info):
        g = gt_frame(info, data["metainfo"], fmt)
        return g["boxes"][g["names"] == "Car"]

    def run(samples):
        m = METRICS.build(
            dict(
                type="CarAPMetric",
                ann_file=str(ann),
                gt_format=fmt,
                all_easy=True,
                pcd_limit_range=None,
            )
        )
        for s in samples:
            s["pred_instances_3d"]["bboxes_3d"] = _Boxes(s["pred_instances_3d"]["bboxes_3d"])
        m.process({}, samples)
        return m.evaluate(len(samples))

    perfect = _perfect(data, lambda i: boxes(i) + np.array([0.05, 0, 0, 0, 0, 0, 0]))
    res = run(perfect)
    shifted = _perfect(data, lambda i: boxes(i) + np.array([2.0, 0, 0, 0, 0, 0, 0]))
    res_bad = run(shifted)
    # one Waymo car: R40 has no recall position below a single TP, R11 has recall 0
    assert res["car/Car_BEV_R11_easy"] > 0
    assert res_bad["car/Car_BEV_R11_easy"] == 0.0
    assert res["car/Car_3D_R11_easy"] == res["car/Car_BEV_R11_easy"]
