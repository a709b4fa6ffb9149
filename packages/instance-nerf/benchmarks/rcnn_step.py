"""NeRF-RCNN train-step and predict time per backbone preset on analytic grids; prints one JSON object.

``--quick``: preset ``tiny`` at 32³ with 2 timed steps (CPU-friendly). Otherwise ``tiny`` and ``small`` at 64
(and ``vgg19`` at 96 on CUDA), batch 2 (8 on CUDA).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from instance_nerf.data.synth import build_scene
from instance_nerf.rcnn.data import analytic_grid, collate
from instance_nerf.rcnn.model import NeRFRCNN, NeRFRCNNConfig


def _batch(n: int, res: int, device: str):
    items = []
    for s in range(n):
        rng = np.random.default_rng(1000 + s)
        g = analytic_grid(build_scene(rng, 5), res, True, rng)
        ids = torch.from_numpy(g["instance_grid"].astype(np.int64))
        masks = torch.stack([ids == int(k) for k in g["instance_ids"]])
        grid = torch.from_numpy(g["rgbsigma"].astype(np.float32)).permute(3, 0, 1, 2)
        items.append(
            (
                grid,
                {
                    "boxes": torch.from_numpy(g["boxes"]),
                    "labels": torch.from_numpy(g["labels"]),
                    "masks": masks,
                },
            )
        )
    grids, targets = collate(items)
    return grids.to(device), [{k: v.to(device) for k, v in t.items()} for t in targets]


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def bench(preset: str, res: int, batch: int, device: str, steps: int) -> dict:
    torch.manual_seed(0)
    model = NeRFRCNN(NeRFRCNNConfig(backbone=preset, resolution=res)).to(device)
    grids, targets = _batch(batch, res, device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    times = []
    for i in range(steps + 1):
        _sync(device)
        t = time.perf_counter()
        loss = sum(model(grids, targets, stage="all").values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        _sync(device)
        if i > 0:  # the first step is warm-up
            times.append(time.perf_counter() - t)
    _sync(device)
    t = time.perf_counter()
    model.predict(grids[0], score_thresh=0.0)
    _sync(device)
    predict_s = time.perf_counter() - t
    return {
        "preset": preset,
        "resolution": res,
        "grid_shape": list(grids.shape[2:]),
        "batch": batch,
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "train_step_s": round(float(np.median(times)), 4),
        "predict_s": round(predict_s, 4),
        "peak_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2)
        if device == "cuda"
        else None,
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    if a.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("CUDA not available")
    if a.quick:
        cases = [("tiny", 32, 1)]
    elif a.device == "cuda":
        cases = [("tiny", 64, 8), ("small", 64, 8), ("vgg19", 96, 2)]
    else:
        cases = [("tiny", 64, 2), ("small", 64, 1)]
    steps = 2 if a.quick else 5
    results = [bench(p, r, b, a.device, steps) for p, r, b in cases]
    res = {
        "benchmark": "rcnn_step",
        "package": "instance-nerf",
        "device": a.device,
        "results": results,
    }
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
