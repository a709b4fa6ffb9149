"""Domain check for NeRF-RCNN: AP on analytic grids vs grids extracted from nerfacto runs of the same rooms.

Per seed: a procedural room (``synth``), nerfacto on its views, ``extract-grid --alpha`` at the checkpoint's
resolution, and the analytic grid of the same primitives (clean and with ``--corrupt nerf``). All three are
scored against the primitives' boxes and voxel masks. Prints one JSON object.

``--quick``: one seed, 40 nerfacto iterations (a smoke run: the NeRF grid is not yet a room).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from instance_nerf.data.synth import SynthConfig, build_scene, generate
from instance_nerf.rcnn.data import analytic_grid
from instance_nerf.rcnn.evaluate import detection_ap
from instance_nerf.rcnn.model import NeRFRCNN


def _target(g: dict) -> dict:
    ids = torch.from_numpy(g["instance_grid"].astype(np.int64))
    return {
        "boxes": torch.from_numpy(g["boxes"]),
        "labels": torch.from_numpy(g["labels"]),
        "masks": torch.stack([ids == int(k) for k in g["instance_ids"]]),
    }


def _tensor(rgbsigma: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgbsigma.astype(np.float32)).permute(3, 0, 1, 2).contiguous()


def nerf_grid(scene: Path, runs: Path, res: int, iters: int, rays: int) -> np.ndarray:
    """nerfacto on ``scene`` (resumable), then the alpha grid over the scene AABB (longest side ``res``)."""
    from instance_nerf.data.dataparser import InstanceDataParserConfig
    from instance_nerf.engine.checkpoint import load_run
    from instance_nerf.engine.config import nerfacto_cpu_config
    from instance_nerf.engine.grid import pipeline_grid
    from instance_nerf.engine.pipeline import train_resumable

    cfg = nerfacto_cpu_config(
        scene, InstanceDataParserConfig(), runs, max_iters=iters, rays_per_batch=rays
    )
    cfg.steps_per_save = max(50, iters // 4)
    _, pipe, _ = load_run(train_resumable(cfg))
    return pipeline_grid(pipe, res, 8, alpha=True)["rgbsigma"]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ckpt", required=True, help="NeRF-RCNN checkpoint")
    ap.add_argument("--out", default="rcnn_domain")
    ap.add_argument("--seeds", default="1450:1455", help="START:STOP (outside the training seeds)")
    ap.add_argument("--objects", type=int, default=5)
    ap.add_argument("--nerf-iters", type=int, default=300)
    ap.add_argument("--rays", type=int, default=1024)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    lo, hi = (int(x) for x in a.seeds.split(":"))
    iters = a.nerf_iters
    if a.quick:
        hi, iters = lo + 1, 40
    model = NeRFRCNN.load(a.ckpt, a.device)
    res = model.config.resolution
    kinds = ("analytic_clean", "analytic_corrupt", "nerf")
    preds: dict[str, list] = {k: [] for k in kinds}
    gts, seconds = [], {}
    for seed in range(lo, hi):
        t = time.perf_counter()
        scene = Path(a.out) / f"scene_{seed}"
        if not (scene / "transforms.json").is_file():
            generate(scene, SynthConfig(seed=seed, num_objects=a.objects, voxel_resolution=res))
        prims = build_scene(np.random.default_rng(seed), a.objects)  # generate()'s first draw
        clean = analytic_grid(prims, res, False, np.random.default_rng(seed))
        noisy = analytic_grid(prims, res, True, np.random.default_rng(seed + 1))
        grids = {
            "analytic_clean": clean["rgbsigma"],
            "analytic_corrupt": noisy["rgbsigma"],
            "nerf": nerf_grid(scene, Path(a.out) / f"runs_{seed}", res, iters, a.rays),
        }
        if grids["nerf"].shape != clean["rgbsigma"].shape:
            raise SystemExit(
                f"seed {seed}: NeRF grid {grids['nerf'].shape} vs analytic {clean['rgbsigma'].shape}"
            )
        gts.append(_target(clean))
        for k in kinds:
            p = model.predict(_tensor(grids[k]).to(a.device), score_thresh=0.05)
            preds[k].append({n: v.cpu() for n, v in p.items()})
        seconds[seed] = round(time.perf_counter() - t, 1)
    n_cls = len(model.config.classes)
    thresh = model.config.score_thresh
    result = {
        "benchmark": "rcnn_domain",
        "package": "instance-nerf",
        "device": a.device,
        "ckpt": a.ckpt,
        "seeds": list(range(lo, hi)),
        "nerf_iters": iters,
        "seconds_per_seed": seconds,
        "score_thresh": thresh,
        "results": {},
    }
    for k in kinds:
        high = [{n: v[p["scores"] > thresh] for n, v in p.items()} for p in preds[k]]
        r = {n: round(v, 4) for n, v in detection_ap(high, gts, n_cls).items()}
        r.update({f"{n}_low": round(v, 4) for n, v in detection_ap(preds[k], gts, n_cls).items()})
        r["detections_per_scene"] = sum(len(p["scores"]) for p in high) / len(high)
        result["results"][k] = r
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
