"""Detector speed on synthetic frames: train step and inference, one JSON line.

CPU: PointPillars (the shipped ROS stage-1 config) vs the same detector with the GroupEXP
head (3 groups): train step time and predict time per frame, interleaved, with ratios.
CUDA: also SECOND (sparse conv) vs SECOND + GroupEXP. ``--with-reference`` adds, in the same
interleaved loop, the GroupEXP model with the per-branch target path
(``GroupExpAnchor3DHead.loss_groups_reference``: mmdet3d's ``loss_by_feat`` once per branch, the
path before the branches' targets were batched), for a before/after in one run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _use_reference_targets(head) -> None:
    """Route ``head.loss_groups`` through the per-branch reference path (same losses)."""
    from groupexp_da.models.group_head import branch_instances

    def loss_groups(feats, mu, gt_boxes, codes, metas, weight=1.0):
        gts = branch_instances(gt_boxes, codes)
        return head.loss_groups_reference(feats, mu, gts, metas, weight)

    head.loss_groups = loss_groups


def _setup(config: str, data: Path, device: str, batch: int, reference: bool = False):
    from mmdet3d.registry import DATASETS, MODELS
    from mmdet3d.utils import register_all_modules
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import OptimWrapper

    import groupexp_da.register  # noqa: F401
    from groupexp_da.engine.config import load_config

    register_all_modules(init_default_scope=True)
    cfg = load_config(config, source=str(data / "source"), target=str(data / "target"))
    train_ds = DATASETS.build(cfg.train_dataloader.dataset)
    test_ds = DATASETS.build(cfg.test_dataloader.dataset)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(device)
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    tb = pseudo_collate([train_ds[i % len(train_ds)] for i in range(batch)])
    vb = pseudo_collate([test_ds[i % len(test_ds)] for i in range(batch)])
    if hasattr(model, "groups"):  # GroupEXP: k-means init on this batch's cars
        model.eval()
        with torch.no_grad():
            d = model.data_preprocessor(tb, True)
            feats = model.describe(d["inputs"]["points"], d["data_samples"])["feats"]
        model.groups.fit_init(feats)
        if reference:
            _use_reference_targets(model.bbox_head)
    return model, optim, tb, vb


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _time_train(model, optim, tb, device) -> float:
    model.train()
    _sync(device)
    t0 = time.perf_counter()
    model.train_step(tb, optim)
    _sync(device)
    return time.perf_counter() - t0


@torch.no_grad()
def _time_pred(model, vb, device) -> float:
    model.eval()
    _sync(device)
    t0 = time.perf_counter()
    model.test_step(vb)
    _sync(device)
    return time.perf_counter() - t0


def _bench_pair(configs: dict[str, str], data: Path, device: str, batch: int, steps: int) -> dict:
    """Time the models of ``configs`` interleaved step by step (median), so load changes on a
    shared machine hit all of them alike."""
    setups = {
        k: _setup(c, data, device, batch, reference=k.endswith("_reference"))
        for k, c in configs.items()
    }
    for model, optim, tb, vb in setups.values():  # warm-up
        _time_train(model, optim, tb, device)
        _time_pred(model, vb, device)
    train = {k: [] for k in setups}
    pred = {k: [] for k in setups}
    for _ in range(steps):
        for k, (model, optim, tb, vb) in setups.items():
            train[k].append(_time_train(model, optim, tb, device))
            pred[k].append(_time_pred(model, vb, device))
    out = {}
    for k, (model, *_rest) in setups.items():
        t_train, t_pred = float(np.median(train[k])), float(np.median(pred[k]))
        out[k] = {
            "config": configs[k],
            "batch": batch,
            "train_step_s": round(t_train, 4),
            "train_fps": round(batch / t_train, 2),
            "predict_s_per_frame": round(t_pred / batch, 4),
            "inference_fps": round(batch / t_pred, 2),
            "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
        }
    return out


def _ratios(res: dict, name: str) -> None:
    """GroupEXP (3 groups) vs its baseline: goals train <= 1.5x, inference FPS >= 0.95x."""
    g, b = res[f"{name}_groupexp"], res[name]
    res[f"{name}_groupexp_vs_baseline"] = {
        "train_step_ratio": round(g["train_step_s"] / b["train_step_s"], 3),
        "train_goal_max": 1.5,
        "inference_fps_ratio": round(g["inference_fps"] / b["inference_fps"], 3),
        "inference_goal_min": 0.95,
    }
    ref = res.get(f"{name}_groupexp_reference")
    if ref is not None:
        res[f"{name}_groupexp_vs_baseline"]["train_step_ratio_reference_targets"] = round(
            ref["train_step_s"] / b["train_step_s"], 3
        )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--with-reference",
        action="store_true",
        help="also time GroupEXP with the per-branch target path (before/after in one run)",
    )
    a = ap.parse_args(argv)
    if a.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but no CUDA device")
    from groupexp_da.data.synth import write_domain

    steps = 2 if a.quick else 7
    batch = 2 if a.device == "cpu" or a.quick else 8
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        write_domain(data / "source", "source", batch + 2, seed=0)
        write_domain(data / "target", "target", batch + 2, seed=1)
        extra = {"pointpillars_groupexp_reference": "pointpillars_synth_groupexp_src_cpu"}
        res = _bench_pair(
            {
                "pointpillars": "pointpillars_synth_ros_cpu",
                "pointpillars_groupexp": "pointpillars_synth_groupexp_src_cpu",
                **(extra if a.with_reference else {}),
            },
            data,
            a.device,
            batch,
            steps,
        )
        _ratios(res, "pointpillars")
        if a.device == "cuda":
            res.update(
                _bench_pair(
                    {
                        "second": "second_synth_source_only_gpu",
                        "second_groupexp": "second_synth_groupexp_src_gpu",
                        **(
                            {"second_groupexp_reference": "second_synth_groupexp_src_gpu"}
                            if a.with_reference
                            else {}
                        ),
                    },
                    data,
                    a.device,
                    batch,
                    steps,
                )
            )
            _ratios(res, "second")
            res["second_vs_pointpillars_train_time"] = round(
                res["second"]["train_step_s"] / res["pointpillars"]["train_step_s"], 3
            )
    res["pointpillars"]["predict_vs_train_time_per_frame"] = round(
        res["pointpillars"]["predict_s_per_frame"] * batch / res["pointpillars"]["train_step_s"], 3
    )
    res["torch_threads"] = torch.get_num_threads()
    print(
        json.dumps(
            {
                "benchmark": "detector_speed",
                "package": "groupexp-da",
                "device": a.device,
                "results": res,
            }
        )
    )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
