"""``instance-nerf`` command line: synth, demo, eval, extract-grid, query, export."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _device(name: str) -> str:
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda requested but CUDA is not available")
    return name


def cmd_synth(a: argparse.Namespace) -> int:
    from instance_nerf.data.synth import SynthConfig, generate

    cfg = SynthConfig(seed=a.seed, num_objects=a.objects, num_views=a.views, width=a.size, height=a.size,
                      voxel_resolution=a.voxel_resolution)
    print(json.dumps(generate(Path(a.out), cfg, noisy_masks=a.noisy_masks)))
    return 0


def cmd_eval(a: argparse.Namespace) -> int:
    from instance_nerf.engine.loading import load_run
    from instance_nerf.eval.evaluate import evaluate_pipeline

    _, pipeline, ckpt = load_run(a.config, device=_device(a.device))
    metrics = evaluate_pipeline(pipeline, Path(a.out))
    print(f"checkpoint: {ckpt}")
    print(json.dumps({k: metrics[k] for k in ("miou", "pq", "consistency", "instance_pixel_accuracy", "psnr")}))
    return 0


def _field(a: argparse.Namespace):
    from instance_nerf.engine.grid import model_field_fn
    from instance_nerf.engine.loading import load_run

    device = _device(a.device)
    _, pipeline, _ = load_run(a.config, device=device, test_mode="test")
    return pipeline, model_field_fn(pipeline.model, device)


def _grid(a: argparse.Namespace, pipeline, fn):
    import numpy as np

    from instance_nerf.engine.grid import extract_grid

    aabb = pipeline.model.scene_box.aabb.cpu().numpy()
    cams = pipeline.datamanager.train_dataset.cameras.camera_to_worlds[:, :3, 3]
    idx = np.linspace(0, len(cams) - 1, min(a.num_views, len(cams))).round().astype(int)
    return extract_grid(fn, aabb, a.resolution, cams[idx], alpha=getattr(a, "alpha", False))


def cmd_extract_grid(a: argparse.Namespace) -> int:
    import os

    import numpy as np

    pipeline, fn = _field(a)
    grid = _grid(a, pipeline, fn)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp.npz")
    np.savez_compressed(tmp, **grid)
    os.replace(tmp, out)
    ids, counts = np.unique(grid["instance"][grid["rgbsigma"][..., 3] > a.min_density], return_counts=True)
    print(json.dumps({"out": str(out), "shape": list(grid["rgbsigma"].shape),
                      "occupied_voxels_per_instance": {int(i): int(c) for i, c in zip(ids, counts)}}))
    return 0


def cmd_query(a: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from instance_nerf.engine.grid import query_points

    pts = np.load(a.points)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise SystemExit(f"{a.points}: expected an (N, 3) array, got {pts.shape}")
    pipeline, fn = _field(a)
    res = query_points(fn, torch.from_numpy(pts))
    if a.out:
        np.savez(a.out, points=pts, **res)
    for p, k, pr, d in list(zip(pts, res["instance"], res["probability"], res["density"]))[: a.show]:
        print(f"{p[0]:+.3f} {p[1]:+.3f} {p[2]:+.3f}  id={int(k)}  p={float(pr):.3f}  density={float(d):.3f}")
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    import numpy as np

    from instance_nerf.engine.grid import grid_axes, write_ply

    pipeline, fn = _field(a)
    grid = _grid(a, pipeline, fn)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    axes = grid_axes(np.stack([grid["bbox_min"], grid["bbox_max"]]), a.resolution)
    xyz = np.stack(np.meshgrid(*axes, indexing="ij"), -1)
    occ = grid["rgbsigma"][..., 3] > a.min_density
    written = {}
    for k in np.unique(grid["instance"][occ]):
        if k == 0 and not a.with_background:
            continue
        sel = occ & (grid["instance"] == k)
        write_ply(out / f"instance_{int(k):03d}.ply", xyz[sel], grid["rgbsigma"][sel][:, :3])
        written[int(k)] = int(sel.sum())
    print(json.dumps({"out": str(out), "points_per_instance": written}))
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from instance_nerf.engine.demo import run_demo

    metrics = run_demo(Path(a.out), seed=a.seed, nerf_iters=a.nerf_iters, instance_iters=a.instance_iters,
                       rays=a.rays, device=_device(a.device))
    print(json.dumps(metrics))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="instance-nerf", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="procedural room with exact RGB/depth/instance/semantic maps")
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--objects", type=int, default=5)
    s.add_argument("--views", type=int, default=48)
    s.add_argument("--size", type=int, default=64, help="image width = height")
    s.add_argument("--voxel-resolution", type=int, default=64)
    s.add_argument("--noisy-masks", action="store_true", help="also write per-view perturbed, permuted masks")
    s.set_defaults(func=cmd_synth)

    def run_args(sp, config=True):
        if config:
            sp.add_argument("--config", required=True, help="config.yml of a trained run")
        sp.add_argument("--device", default="cpu", choices=["cpu", "cuda"])

    e = sub.add_parser("eval", help="render held-out views; metrics.json with miou, pq, consistency")
    run_args(e)
    e.add_argument("--out", required=True)
    e.set_defaults(func=cmd_eval)

    g = sub.add_parser("extract-grid", help="RGB+density grid (W,L,H,4) and instance argmax over the AABB")
    run_args(g)
    g.add_argument("--out", required=True, help="output .npz")
    g.add_argument("--resolution", type=int, default=160, help="voxels along the longest AABB side")
    g.add_argument("--num-views", type=int, default=8, help="training cameras whose view directions are averaged")
    g.add_argument("--alpha", action="store_true", help="store alpha = 1 - exp(-sigma * voxel) instead of sigma")
    g.add_argument("--min-density", type=float, default=5.0)
    g.set_defaults(func=cmd_extract_grid)

    q = sub.add_parser("query", help="instance id + probability at 3D points (N,3 .npy)")
    run_args(q)
    q.add_argument("--points", required=True)
    q.add_argument("--out", help="optional .npz with points, instance, probability, density")
    q.add_argument("--show", type=int, default=10, help="print this many rows")
    q.set_defaults(func=cmd_query)

    x = sub.add_parser("export", help="one PLY point cloud per instance")
    run_args(x)
    x.add_argument("--out", required=True)
    x.add_argument("--resolution", type=int, default=96)
    x.add_argument("--num-views", type=int, default=4)
    x.add_argument("--min-density", type=float, default=5.0)
    x.add_argument("--with-background", action="store_true")
    x.set_defaults(func=cmd_export)

    d = sub.add_parser("demo", help="synth -> nerfacto -> instance field -> eval -> renders")
    run_args(d, config=False)
    d.add_argument("--out", required=True)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--nerf-iters", type=int, default=300)
    d.add_argument("--instance-iters", type=int, default=1000)
    d.add_argument("--rays", type=int, default=1024)
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
