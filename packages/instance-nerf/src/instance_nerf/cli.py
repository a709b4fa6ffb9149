"""``instance-nerf`` command line: part 1 (synth, demo, eval, extract-grid, query, export) and the pipeline verbs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _error(message: str) -> Exception:
    """The package's bad-input error (imported here so ``--help`` loads nothing heavy)."""
    from instance_nerf.data.io import InstanceNerfError

    return InstanceNerfError(message)


def _device(name: str) -> str:
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise _error("--device cuda requested but CUDA is not available")
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
    summary = generate(Path(args.out), cfg, noisy_masks=args.noisy_masks)
    if args.panoptic_noise:
        from instance_nerf.data.noisy import write_noisy_panoptic

        out = Path(args.out) / f"panoptic_{args.panoptic_noise}"
        summary["panoptic"] = write_noisy_panoptic(
            Path(args.out), out, args.seed, args.panoptic_noise
        )["out"]
    print(json.dumps(summary))
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
    summary = {"out": args.out, "points_per_instance": written}
    if args.mesh:
        from instance_nerf.engine.grid import export_instances_mesh

        summary["triangles_per_instance"] = export_instances_mesh(
            grid, args.out, args.min_density, args.with_background
        )
    print(json.dumps(summary))
    return 0


def cmd_synth_grids(args: argparse.Namespace) -> int:
    from instance_nerf.rcnn.data import synth_grids

    lo, hi = _range(args.seeds)
    olo, ohi = _range(args.objects)
    print(
        json.dumps(
            synth_grids(
                Path(args.out),
                range(lo, hi),
                args.resolution,
                args.corrupt == "nerf",
                (olo, ohi - 1),
            )
        )
    )
    return 0


def _range(text: str) -> tuple[int, int]:
    try:
        a, b = (int(x) for x in text.split(":"))
    except ValueError:
        raise _error(f"{text!r}: expected START:STOP") from None
    if b <= a:
        raise _error(f"{text!r}: STOP must be larger than START")
    return a, b


def cmd_rcnn(args: argparse.Namespace) -> int:
    from instance_nerf.rcnn.model import NeRFRCNN
    from instance_nerf.rcnn.train import evaluate_rcnn, train_rcnn

    if args.rcnn_command == "train":
        res = train_rcnn(
            Path(args.data),
            Path(args.out),
            args.backbone,
            args.epochs_rpn,
            args.epochs_heads,
            args.batch_size,
            args.lr,
            device=_device(args.device),
            eval_limit=args.eval_limit,
            rpn=Path(args.rpn) if args.rpn else None,
        )
        print(json.dumps(res["history"][-1] if res["history"] else {}))
    elif args.rcnn_command == "predict":
        from instance_nerf.engine.pipeline import rcnn_masks3d

        print(
            json.dumps(
                rcnn_masks3d(
                    Path(args.ckpt),
                    Path(args.grid),
                    Path(args.out),
                    args.score_thresh,
                    _device(args.device),
                )
            )
        )
    else:
        model = NeRFRCNN.load(args.ckpt, _device(args.device))
        print(json.dumps(evaluate_rcnn(model, Path(args.data), args.split, args.device)))
    return 0


def cmd_rpn(args: argparse.Namespace) -> int:
    if args.rpn_command == "train":
        from instance_nerf.rcnn.train import train_rcnn

        res = train_rcnn(
            Path(args.data),
            Path(args.out),
            args.backbone,
            args.epochs,
            0,
            args.batch_size,
            args.lr,
            device=_device(args.device),
        )
        print(json.dumps(res["history"][-1] if res["history"] else {}))
    else:
        from instance_nerf.rcnn.infer import rpn_proposals

        print(
            json.dumps(
                rpn_proposals(
                    Path(args.ckpt),
                    Path(args.grid),
                    Path(args.out),
                    args.nms,
                    args.top,
                    _device(args.device),
                )
            )
        )
    return 0


def cmd_masks(args: argparse.Namespace) -> int:
    from instance_nerf.engine.pipeline import mask2former_panoptic

    print(
        json.dumps(
            mask2former_panoptic(
                Path(args.scene),
                Path(args.model),
                Path(args.out),
                _device(args.device),
                args.class_map,
            )
        )
    )
    return 0


def cmd_project(args: argparse.Namespace) -> int:
    from instance_nerf.matching.scene import occupancy_from_grid, project_scene

    counts = project_scene(
        Path(args.scene),
        occupancy_from_grid(Path(args.grid)),
        Path(args.masks3d),
        Path(args.out),
        args.mode,
    )
    print(
        json.dumps({"out": args.out, "views": len(counts), "labelled_pixels": sum(counts.values())})
    )
    return 0


def cmd_match(args: argparse.Namespace) -> int:
    from instance_nerf.matching.scene import match_scene

    print(
        json.dumps(
            match_scene(
                Path(args.scene),
                Path(args.panoptic),
                Path(args.projected),
                Path(args.masks3d),
                Path(args.out),
                args.iou_thresh,
                args.split_merged,
            )
        )
    )
    return 0


def cmd_refine(args: argparse.Namespace) -> int:
    from instance_nerf.engine.pipeline import refine_run

    print(
        json.dumps(
            refine_run(
                Path(args.config),
                Path(args.out),
                args.refiner,
                _device(args.device),
                Path(args.cascadepsp_dir) if args.cascadepsp_dir else None,
            )
        )
    )
    return 0


def cmd_eval_masks(args: argparse.Namespace) -> int:
    from instance_nerf.eval.panoptic_eval import evaluate_panoptic

    print(json.dumps(evaluate_panoptic(Path(args.scene), Path(args.panoptic), args.split)))
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    from instance_nerf.engine.pipeline import PipelineConfig, run_pipeline

    cfg = PipelineConfig(
        scene=Path(args.scene),
        out=Path(args.out),
        rcnn=Path(args.rcnn) if args.rcnn else None,
        oracle_3d=args.oracle_3d,
        m2f=Path(args.m2f) if args.m2f else None,
        panoptic=Path(args.panoptic) if args.panoptic else None,
        refine=None if args.refine == "none" else args.refine,
        cascadepsp_dir=Path(args.cascadepsp_dir) if args.cascadepsp_dir else None,
        resolution=args.resolution,
        nerf_iters=args.nerf_iters,
        stage_a_iters=args.stage_a_iters,
        stage_b_iters=args.stage_b_iters,
        rays=args.rays,
        regularizer=args.regularizer,
        projection=args.mode,
        device=_device(args.device),
    )
    print(json.dumps(run_pipeline(cfg)))
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    from instance_nerf.engine.experiment import ExperimentConfig, run_experiment

    lo, hi = _range(args.seeds)
    cfg = ExperimentConfig(
        out=Path(args.out),
        seeds=tuple(range(lo, hi)),
        severity=args.severity,
        rcnn=Path(args.rcnn) if args.rcnn else None,
        nerf_iters=args.nerf_iters,
        stage_a_iters=args.stage_a_iters,
        stage_b_iters=args.stage_b_iters,
        rays=args.rays,
        regularizer=args.regularizer,
        device=_device(args.device),
        views=args.views,
        rows=tuple(r.strip() for r in args.rows.split(",") if r.strip()),
    )
    summary = run_experiment(cfg)
    print(json.dumps({"out": args.out, "table": summary["table"], "checks": summary["checks"]}))
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
    s.add_argument(
        "--panoptic-noise",
        choices=["low", "medium", "high"],
        help="also write noisy panoptic masks (the spec's noise model) to panoptic_<severity>/",
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
    x.add_argument(
        "--mesh",
        action="store_true",
        help="also a marching-cubes mesh per instance (instance_XXX_mesh.ply)",
    )
    x.set_defaults(func=cmd_export)

    d = sub.add_parser("demo", help="synth -> nerfacto -> instance field -> eval -> renders")
    run_args(d, config=False)
    d.add_argument("--out", required=True)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--nerf-iters", type=int, default=300)
    d.add_argument("--instance-iters", type=int, default=1000)
    d.add_argument("--rays", type=int, default=1024)
    d.set_defaults(func=cmd_demo)
    sg = sub.add_parser(
        "synth-grids", help="analytic RGB+alpha grids with boxes/masks to train NeRF-RCNN"
    )
    sg.add_argument("--out", required=True)
    sg.add_argument("--seeds", default="1000:1400", help="START:STOP")
    sg.add_argument("--resolution", type=int, default=64)
    sg.add_argument("--corrupt", choices=["nerf", "none"], default="nerf")
    sg.add_argument("--objects", default="3:9", help="START:STOP objects per scene")
    sg.set_defaults(func=cmd_synth_grids)

    rp_ = sub.add_parser("rpn", help="NeRF-RPN (FCOS3D) stage alone: train | predict proposals")
    rpsub = rp_.add_subparsers(dest="rpn_command", required=True)
    rpt = rpsub.add_parser("train", help="backbone + FCOS3D only; resumes per epoch")
    rpt.add_argument("--data", required=True)
    rpt.add_argument("--out", required=True)
    rpt.add_argument("--backbone", choices=["tiny", "small", "vgg19"], default="tiny")
    rpt.add_argument("--epochs", type=int, default=10)
    rpt.add_argument("--batch-size", type=int, default=2)
    rpt.add_argument("--lr", type=float, default=1e-3)
    rpp = rpsub.add_parser("predict", help="proposals of one grid -> rois.npz (boxes, scores)")
    rpp.add_argument("--ckpt", required=True)
    rpp.add_argument("--grid", required=True)
    rpp.add_argument("--out", required=True)
    rpp.add_argument("--nms", type=float, help="proposal NMS IoU (default: the checkpoint's, 0.3)")
    rpp.add_argument("--top", type=int, help="keep this many (default: the checkpoint's, 2500)")
    for sp in (rpt, rpp):
        sp.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    rp_.set_defaults(func=cmd_rpn)

    r = sub.add_parser("rcnn", help="NeRF-RCNN: train | predict | eval")
    rsub = r.add_subparsers(dest="rcnn_command", required=True)
    rt = rsub.add_parser(
        "train", help="stage 1 backbone+FCOS, stage 2 RoI heads; resumes per epoch"
    )
    rt.add_argument("--data", required=True)
    rt.add_argument("--out", required=True)
    rt.add_argument("--backbone", choices=["tiny", "small", "vgg19"], default="tiny")
    rt.add_argument("--epochs-rpn", type=int, default=10)
    rt.add_argument("--epochs-heads", type=int, default=10)
    rt.add_argument("--batch-size", type=int, default=2)
    rt.add_argument("--lr", type=float, default=1e-3)
    rt.add_argument(
        "--rpn", help="start from an 'instance-nerf rpn train' checkpoint; trains the heads only"
    )
    rt.add_argument(
        "--eval-limit", type=int, help="validation scenes scored during training (default: all)"
    )
    rp = rsub.add_parser("predict", help="3D instance masks of one grid -> masks3d.npz")
    rp.add_argument("--ckpt", required=True)
    rp.add_argument("--grid", required=True)
    rp.add_argument("--out", required=True)
    rp.add_argument("--score-thresh", type=float, default=0.5)
    re_ = rsub.add_parser("eval", help="mask/box AP@0.25/0.5 on a synth-grids split")
    re_.add_argument("--ckpt", required=True)
    re_.add_argument("--data", required=True)
    re_.add_argument("--split", default="val")
    for sp in (rt, rp, re_):
        sp.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    r.set_defaults(func=cmd_rcnn)

    mk = sub.add_parser(
        "masks", help="Mask2Former panoptic masks of the training views (local folder only)"
    )
    mk.add_argument("--scene", required=True)
    mk.add_argument(
        "--model", required=True, help="folder with a saved Mask2Former and its image processor"
    )
    mk.add_argument("--out", required=True)
    mk.add_argument("--class-map", default="coco_to_nyu40", help="bundled name or a JSON file")
    mk.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    mk.set_defaults(func=cmd_masks)

    pj = sub.add_parser("project", help="project masks3d.npz into every training view")
    pj.add_argument("--scene", required=True)
    pj.add_argument("--grid", required=True)
    pj.add_argument("--masks3d", required=True)
    pj.add_argument("--out", required=True)
    pj.add_argument("--mode", choices=["raycast", "splat"], default="raycast")
    pj.set_defaults(func=cmd_project)

    mt = sub.add_parser(
        "match", help="give each 2D segment the id of the projection it overlaps most"
    )
    mt.add_argument("--scene", required=True)
    mt.add_argument("--panoptic", required=True)
    mt.add_argument("--projected", required=True)
    mt.add_argument("--masks3d", required=True)
    mt.add_argument("--out", required=True)
    mt.add_argument("--iou-thresh", type=float, default=0.05)
    mt.add_argument("--split-merged", action="store_true")
    mt.set_defaults(func=cmd_match)

    rf = sub.add_parser(
        "refine", help="render a run's training views, refine each instance, composite"
    )
    run_args(rf)
    rf.add_argument("--out", required=True)
    rf.add_argument("--refiner", choices=["guided", "cascadepsp"], default="guided")
    rf.add_argument("--cascadepsp-dir", help="folder holding CascadePSP's 'model' weights file")
    rf.set_defaults(func=cmd_refine)

    em = sub.add_parser("eval-masks", help="score 2D panoptic masks as they are against instances/")
    em.add_argument("--scene", required=True)
    em.add_argument("--panoptic", required=True)
    em.add_argument("--split", default="test", choices=["train", "test"])
    em.set_defaults(func=cmd_eval_masks)

    def budgets(sp):
        sp.add_argument("--nerf-iters", type=int, default=300)
        sp.add_argument("--stage-a-iters", type=int, default=1000)
        sp.add_argument("--stage-b-iters", type=int, default=800)
        sp.add_argument("--rays", type=int, default=1024)
        sp.add_argument(
            "--regularizer",
            type=float,
            default=1.0,
            help="lambda of the depth-weighted smoothness term (the authors' code: 1.0)",
        )
        sp.add_argument("--device", default="cpu", choices=["cpu", "cuda"])

    pl = sub.add_parser(
        "pipeline",
        help="nerfacto -> grid -> 3D masks -> 2D masks -> project -> match -> field -> refine -> field",
    )
    pl.add_argument("--scene", required=True)
    pl.add_argument("--out", required=True)
    src3 = pl.add_mutually_exclusive_group(required=True)
    src3.add_argument("--rcnn", help="NeRF-RCNN checkpoint")
    src3.add_argument(
        "--oracle-3d", action="store_true", help="true voxel masks of a synthetic scene"
    )
    src2 = pl.add_mutually_exclusive_group(required=True)
    src2.add_argument("--m2f", help="local Mask2Former folder")
    src2.add_argument("--panoptic", help="an existing panoptic folder")
    pl.add_argument("--refine", choices=["guided", "cascadepsp", "none"], default="guided")
    pl.add_argument("--cascadepsp-dir", help="folder holding CascadePSP's 'model' weights file")
    pl.add_argument("--resolution", type=int, default=64)
    pl.add_argument("--mode", choices=["raycast", "splat"], default="raycast")
    budgets(pl)
    pl.set_defaults(func=cmd_pipeline)

    ex = sub.add_parser(
        "experiment", help="experiments: noisy (pipeline vs noisy per-view 2D masks)"
    )
    exs = ex.add_subparsers(dest="experiment", required=True)
    nz = exs.add_parser("noisy", help="rows B0, B1, M1, M2, M3, O over seeds")
    nz.add_argument("--out", required=True)
    nz.add_argument("--seeds", default="100:105")
    nz.add_argument("--severity", choices=["low", "medium", "high"], default="medium")
    nz.add_argument("--rcnn", help="NeRF-RCNN checkpoint (default: oracle 3D masks)")
    nz.add_argument("--views", type=int, default=48)
    nz.add_argument(
        "--rows",
        default="B0,B1,M1,M2,M3,O",
        help="comma-separated rows; B0, M3 and O always (--rows B0,M3 for a severity sweep)",
    )
    budgets(nz)
    ex.set_defaults(func=cmd_experiment)
    return p


def main(argv: list[str] | None = None) -> int:
    """Console entry point: bad input exits with status 2 and one line naming the file."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from instance_nerf.data.io import InstanceNerfError

    try:
        return int(args.func(args) or 0)
    except (InstanceNerfError, OSError, ValueError, KeyError, EOFError) as exc:
        if args.verbose:
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        parser.exit(2, f"{parser.prog}: error: {message}\n")


if __name__ == "__main__":
    raise SystemExit(main())
