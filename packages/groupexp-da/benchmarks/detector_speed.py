"""Detector speed on synthetic frames: train step and inference, one JSON line.

CPU: PointPillars (the shipped CPU config) train step time and predict time per frame.
CUDA: PointPillars and SECOND (sparse conv) train and inference FPS.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _bench(config: str, data: Path, device: str, batch: int, steps: int) -> dict:
    from mmdet3d.registry import DATASETS, MODELS
    from mmdet3d.utils import register_all_modules
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import OptimWrapper

    import groupexp_da.register  # noqa: F401
    from groupexp_da.engine.runner import load_config

    register_all_modules(init_default_scope=True)
    cfg = load_config(config, source=str(data / "source"), target=str(data / "target"))
    train_ds = DATASETS.build(cfg.train_dataloader.dataset)
    test_ds = DATASETS.build(cfg.test_dataloader.dataset)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(device)
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    tb = pseudo_collate([train_ds[i % len(train_ds)] for i in range(batch)])
    vb = pseudo_collate([test_ds[i % len(test_ds)] for i in range(batch)])

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    model.train()
    model.train_step(tb, optim)  # warm-up
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        model.train_step(tb, optim)
    sync()
    t_train = (time.perf_counter() - t0) / steps
    model.eval()
    with torch.no_grad():
        model.test_step(vb)
        sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            model.test_step(vb)
        sync()
    t_pred = (time.perf_counter() - t0) / steps
    return {"batch": batch, "train_step_s": round(t_train, 4),
            "train_fps": round(batch / t_train, 2), "predict_s_per_frame": round(t_pred / batch, 4),
            "inference_fps": round(batch / t_pred, 2),
            "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 3)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    if a.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but no CUDA device")
    from groupexp_da.data.synth import write_domain

    steps = 2 if a.quick else 5
    batch = 2 if a.device == "cpu" or a.quick else 8
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        write_domain(data / "source", "source", batch + 2, seed=0)
        write_domain(data / "target", "target", batch + 2, seed=1)
        res = {"pointpillars": _bench("pointpillars_synth_source_only_cpu", data, a.device,
                                      batch, steps)}
        if a.device == "cuda":
            res["second"] = _bench("second_synth_source_only_gpu", data, a.device, batch, steps)
            res["second_vs_pointpillars_train_time"] = round(
                res["second"]["train_step_s"] / res["pointpillars"]["train_step_s"], 3)
    res["pointpillars"]["predict_vs_train_time_per_frame"] = round(
        res["pointpillars"]["predict_s_per_frame"] * batch / res["pointpillars"]["train_step_s"], 3)
    res["torch_threads"] = torch.get_num_threads()
    print(json.dumps({"benchmark": "detector_speed", "package": "groupexp-da",
                      "device": a.device, "results": res}))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
