"""Training rays/s of nerfacto vs instance-nerf, joint and two-stage (frozen NeRF evaluated without gradients),
on the same scene, batch and sizes, and the instance-map render time.

Prints one JSON object (last stdout line). ``--device cuda`` uses nerfacto's default sizes and the
tcnn backend when tinycudann is importable (nerfstudio falls back to torch otherwise);
``--device cpu`` uses the small pure-torch config. ``--quick`` shrinks everything.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from instance_nerf.data.dataparser import InstanceDataParserConfig
from instance_nerf.data.synth import SynthConfig, generate
from instance_nerf.engine.config import (
    instance_cpu_config,
    nerfacto_cpu_config,
    small_nerfacto_model,
)
from instance_nerf.models.instance_nerfacto import InstanceFieldConfig


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _backend() -> str:
    try:
        import tinycudann  # noqa: F401

        return "tcnn"
    except Exception:
        return "torch"


def _model_overrides(device: str) -> dict:
    if device == "cpu":
        return {}
    # nerfacto defaults (sizes of `ns-train nerfacto`), backend tcnn if present
    from nerfstudio.models.nerfacto import NerfactoModelConfig

    d = NerfactoModelConfig()
    keys = (
        "num_nerf_samples_per_ray",
        "num_proposal_samples_per_ray",
        "hidden_dim",
        "hidden_dim_color",
        "log2_hashmap_size",
        "max_res",
        "num_levels",
        "proposal_net_args_list",
    )
    kw = {k: getattr(d, k) for k in keys}
    kw["implementation"] = _backend()
    kw["eval_num_rays_per_chunk"] = 1 << 15
    return kw


def _time_training(cfg, device: str, warmup: int, iters: int, rays: int) -> float:
    cfg.set_timestamp()
    trainer = cfg.setup(local_rank=0, world_size=1)
    trainer.setup()
    trainer.pipeline.train()
    for step in range(warmup):
        trainer.train_iteration(step)
    _sync(device)
    t = time.perf_counter()
    for step in range(warmup, warmup + iters):
        trainer.train_iteration(step)
    _sync(device)
    dt = time.perf_counter() - t
    trainer._bench_pipeline = trainer.pipeline
    cfg._trainer = trainer
    return rays * iters / dt


@torch.no_grad()
def _render_time(trainer, size: int, device: str, repeats: int) -> float:
    model = trainer.pipeline.model
    model.eval()
    cam = trainer.pipeline.datamanager.train_dataset.cameras[0:1].to(model.device)
    cam.rescale_output_resolution(size / int(cam.width[0, 0]))
    out = model.get_outputs_for_camera(cam)  # warm-up
    assert out["instance"].shape[:2] == (size, size)
    _sync(device)
    t = time.perf_counter()
    for _ in range(repeats):
        model.get_outputs_for_camera(cam)
    _sync(device)
    return (time.perf_counter() - t) / repeats


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    if a.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("CUDA not available")
    torch.manual_seed(0)
    gpu = a.device == "cuda"
    rays = 4096 if gpu else 512
    warmup, iters = (3, 5) if a.quick else ((20, 100) if gpu else (3, 10))
    size = 64 if a.quick else 800
    if a.quick:
        rays = 256
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        img = 32 if a.quick else 64
        generate(
            tmp / "scene",
            SynthConfig(
                seed=0, num_views=12 if a.quick else 48, width=img, height=img, voxel_resolution=16
            ),
        )
        over = _model_overrides(a.device)
        nerf_cfg = nerfacto_cpu_config(
            tmp / "scene",
            InstanceDataParserConfig(),
            tmp / "r",
            rays_per_batch=rays,
            model=small_nerfacto_model(**over),
            device=a.device,
        )
        inst_cfg = instance_cpu_config(
            tmp / "scene", tmp / "r", rays_per_batch=rays, device=a.device, **over
        )
        if gpu:
            inst_cfg.pipeline.model.instance_field = (
                InstanceFieldConfig()
            )  # the method's default sizes
        r_nerf = _time_training(nerf_cfg, a.device, warmup, iters, rays)
        nerf_cfg._trainer.save_checkpoint(0)  # the frozen NeRF of the two-stage case
        ckpt = next(nerf_cfg.get_checkpoint_dir().glob("step-*.ckpt"))
        r_inst = _time_training(inst_cfg, a.device, warmup, iters, rays)
        two_cfg = instance_cpu_config(
            tmp / "scene",
            tmp / "r2",
            rays_per_batch=rays,
            device=a.device,
            nerfacto_checkpoint=ckpt,
            **over,
        )
        if gpu:
            two_cfg.pipeline.model.instance_field = InstanceFieldConfig()
        r_two = _time_training(two_cfg, a.device, warmup, iters, rays)
        render_s = _render_time(inst_cfg._trainer, size, a.device, 1 if not gpu or a.quick else 3)
    res = {
        "benchmark": "train_rays",
        "package": "instance-nerf",
        "device": a.device,
        "results": {
            "nerfacto_rays_per_s": round(r_nerf, 1),
            "instance_nerf_rays_per_s": round(r_inst, 1),
            "ratio": round(r_inst / r_nerf, 3),
            "goal_ratio": 0.7,
            "two_stage_rays_per_s": round(r_two, 1),
            "two_stage_ratio": round(r_two / r_nerf, 3),
            "two_stage_goal_ratio": 1.0,
            "rays_per_batch": rays,
            "timed_iters": iters,
            "render_size": size,
            "instance_map_render_s": round(render_s, 3),
            "backend": over.get("implementation", "torch"),
        },
    }
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
