"""End-to-end demo: procedural room -> nerfacto -> instance field (two-stage) -> eval -> renders."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from instance_nerf.data.io import write_json
from instance_nerf.data.synth import SynthConfig, generate
from instance_nerf.engine.config import instance_cpu_config, nerfacto_cpu_config
from instance_nerf.engine.pipeline import train_resumable
from instance_nerf.models.offline import latest_checkpoint


def run_demo(
    out: Path,
    seed: int = 0,
    nerf_iters: int = 300,
    instance_iters: int = 1000,
    rays: int = 1024,
    device: str = "cpu",
) -> dict:
    """Run every stage into ``out`` and return the metrics (also written to out/metrics.json)."""
    from instance_nerf.data.dataparser import InstanceDataParserConfig
    from instance_nerf.engine.checkpoint import load_run
    from instance_nerf.eval.evaluate import evaluate_pipeline

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    times = {}
    t0 = time.time()
    scene = out / "scene"
    if not (scene / "transforms.json").is_file():
        generate(scene, SynthConfig(seed=seed), noisy_masks=True)
    times["synth_s"] = time.time() - t0

    t = time.time()
    nerf_cfg = nerfacto_cpu_config(
        scene,
        InstanceDataParserConfig(),
        out / "runs",
        max_iters=nerf_iters,
        rays_per_batch=rays,
        device=device,
    )
    nerf_cfg.steps_per_save = max(50, nerf_iters // 4)
    train_resumable(nerf_cfg)
    times["nerfacto_s"] = time.time() - t

    t = time.time()
    ckpt = latest_checkpoint(nerf_cfg.get_checkpoint_dir())
    inst_cfg = instance_cpu_config(
        scene,
        out / "runs",
        max_iters=instance_iters,
        rays_per_batch=rays,
        nerfacto_checkpoint=ckpt,
        device=device,
    )
    inst_cfg.steps_per_save = max(50, instance_iters // 3)
    config_path = train_resumable(inst_cfg)
    times["instance_s"] = time.time() - t

    t = time.time()
    _, pipeline, _ = load_run(config_path, device=device)
    metrics = evaluate_pipeline(pipeline, out / "eval")
    times["eval_s"] = time.time() - t
    times["total_s"] = time.time() - t0
    metrics.update({k: round(v, 1) for k, v in times.items()})
    metrics["config"] = str(config_path)
    write_json(out / "metrics.json", metrics, indent=1)
    return metrics
