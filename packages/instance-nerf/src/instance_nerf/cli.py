"""``instance-nerf`` command line: synth, demo, eval, extract-grid, query, export."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from instance_nerf.data.io import InstanceNerfError


def _device(name: str) -> str:
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise InstanceNerfError("--device cuda requested but CUDA is not available")
    return name


def cmd_synth(args: argparse.Namespace) -> int:
    from instance_nerf.data.synth import SynthConfig, generate

    cfg = SynthConfig(
        seed=args.seed,
        num_objects=args.objects,
        num_views=args.views,
        width=args.size,
        height=args.size,
        voxel_resolution=args.voxel_resolution,
    )
    print(json.dumps(generate(Path(args.out), cfg, noisy_masks=args.noisy_masks)))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from instance_nerf.engine.checkpoint import load_run
    from instance_nerf.eval.evaluate import evaluate_pipeline

    _, pipeline, ckpt = load_run(args.config, device=_device(args.device))
    metrics = evaluate_pipeline(pipeline, Path(args.out))
    print(f"checkpoint: {ckpt}")
    print(
        json.dumps(
            {
                k: metrics[k]
                for k in ("miou", "pq", "consistency", "instance_pixel_accuracy", "psnr")
            }
        )
    )
    return 0


def _pipeline(args: argparse.Namespace):
    from instance_nerf.engine.checkpoint import load_run

    return load_run(args.config, device=_device(args.device), test_mode="test")[1]


def cmd_extract_grid(args: argparse.Namespace) -> int:
    from instance_nerf.engine.grid import occupied_per_instance, pipeline_grid, save_grid

    grid = pipeline_grid(_pipeline(args), args.resolution, args.num_views, args.alpha, args.device)
    save_grid(args.out, grid)
    print(
        json.dumps(
            {
                "out": args.out,
                "shape": list(grid["rgbsigma"].shape),
                "occupied_voxels_per_instance": occupied_per_instance(grid, args.min_density),
            }
        )
    )
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from instance_nerf.engine.grid import query_run

    for line in query_run(_pipeline(args), args.points, args.out, args.device, args.show):
        print(line)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from instance_nerf.engine.grid import export_instances_ply, pipeline_grid

    grid = pipeline_grid(_pipeline(args), args.resolution, args.num_views, device=args.device)
    written = export_instances_ply(grid, args.out, args.min_density, args.with_background)
    print(json.dumps({"out": args.out, "points_per_instance": written}))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from instance_nerf.engine.demo import run_demo

    metrics = run_demo(
        Path(args.out),
        seed=args.seed,
        nerf_iters=args.nerf_iters,
        instance_iters=args.instance_iters,
        rays=args.rays,
        device=_device(args.device),
    )
    print(json.dumps(metrics))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="instance-nerf", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="show the traceback on errors")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="procedural room with exact RGB/depth/instance/semantic maps")
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--objects", type=int, default=5)
    s.add_argument("--views", type=int, default=48)
    s.add_argument("--size", type=int, default=64, help="image width = height")
    s.add_argument("--voxel-resolution", type=int, default=64)
    s.add_argument(
        "--noisy-masks", action="store_true", help="also write per-view perturbed, permuted masks"
    )
    s.set_defaults(func=cmd_synth)

    def run_args(sp, config=True):
        if config:
            sp.add_argument("--config", required=True, help="config.yml of a trained run")
        sp.add_argument("--device", default="cpu", choices=["cpu", "cuda"])

    e = sub.add_parser(
        "eval", help="render held-out views; metrics.json with miou, pq, consistency"
    )
    run_args(e)
    e.add_argument("--out", required=True)
    e.set_defaults(func=cmd_eval)

    g = sub.add_parser(
        "extract-grid", help="RGB+density grid (W,L,H,4) and instance argmax over the AABB"
    )
    run_args(g)
    g.add_argument("--out", required=True, help="output .npz")
    g.add_argument("--resolution", type=int, default=160, help="voxels along the longest AABB side")
    g.add_argument(
        "--num-views",
        type=int,
        default=8,
        help="training cameras whose view directions are averaged",
    )
    g.add_argument(
        "--alpha",
        action="store_true",
        help="store alpha = 1 - exp(-sigma * voxel) instead of sigma",
    )
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
    """Console entry point: bad input exits with status 2 and one line naming the file."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (InstanceNerfError, OSError, ValueError, KeyError, EOFError) as exc:
        if args.verbose:
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        parser.exit(2, f"{parser.prog}: error: {message}\n")


if __name__ == "__main__":
    raise SystemExit(main())
