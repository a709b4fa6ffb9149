"""``groupexp-da`` command line: synth, train, test, adapt, show, demo, recall, convert."""

from __future__ import annotations

import argparse
import json
import sys

from groupexp_da.data.io import GroupExpError


def cmd_synth(a: argparse.Namespace) -> int:
    from groupexp_da.data.synth import write_domain

    paths = write_domain(
        a.out,
        a.domain,
        a.frames,
        seed=a.seed,
        val_fraction=a.val_fraction,
        beams=a.beams,
        progress=True,
    )
    for split, p in paths.items():
        print(f"{split}: {p}")
    return 0


def _cfg(a: argparse.Namespace, phases: tuple[str, ...]):
    from groupexp_da.engine.config import load_config, parse_cfg_options, validate_config

    cfg = load_config(
        a.config,
        source=getattr(a, "source", None),
        target=getattr(a, "target", None),
        work_dir=a.work_dir,
        cfg_options=parse_cfg_options(a.cfg_options),
        device=getattr(a, "device", None),
    )
    validate_config(cfg, phases)
    return cfg


def cmd_train(a: argparse.Namespace) -> int:
    from groupexp_da.engine.config import build_runner

    cfg = _cfg(a, ("train", "val"))
    if a.epochs:
        cfg.train_cfg.max_epochs = a.epochs
        cfg.train_cfg.val_interval = a.epochs
    cfg.resume = a.resume
    runner = build_runner(cfg)
    runner.train()
    print(f"work dir: {cfg.work_dir}")
    return 0


def cmd_test(a: argparse.Namespace) -> int:
    from groupexp_da.data.io import write_json
    from groupexp_da.engine.checkpoint import load_state_dict
    from groupexp_da.engine.config import build_runner

    cfg = _cfg(a, ("test",))
    load_state_dict(a.checkpoint)  # a clear error for a file that is not a checkpoint
    cfg.load_from = a.checkpoint
    metrics = build_runner(cfg).test()
    metrics = {k: round(float(v), 4) for k, v in metrics.items()}
    print(json.dumps(metrics, indent=1))
    if a.out:
        write_json(a.out, metrics, indent=1)
    return 0


def cmd_adapt(a: argparse.Namespace) -> int:
    from groupexp_da.engine.checkpoint import load_state_dict
    from groupexp_da.engine.st3d import adapt

    cfg = _cfg(a, ("st3d", "test"))
    load_state_dict(a.source_ckpt)
    if a.rounds is not None:
        cfg.st3d.rounds = a.rounds
    if a.epochs_per_round is not None:
        cfg.st3d.epochs_per_round = a.epochs_per_round
    hist = adapt(cfg, a.source_ckpt, cfg.work_dir, device=a.device or "cpu")
    for h in hist:
        m = h["metrics"]
        key = [k for k in m if "3D_R40_moderate" in k or "3D_R40_easy" in k]
        print(
            f"round {h['round']:>2}: "
            + ", ".join(f"{k}={m[k]:.2f}" for k in key)
            + (f"  labels={h['labels']}" if "labels" in h else "")
        )
    return 0


def cmd_show(a: argparse.Namespace) -> int:
    from groupexp_da.eval.plots import show_frame

    out = show_frame(
        a.info,
        a.out,
        index=a.index,
        data_root=a.data_root,
        load_dim=a.load_dim,
        gt_format=a.gt_format,
        config=a.config,
        checkpoint=a.checkpoint,
        pseudo=a.pseudo,
    )
    print(f"wrote {out}")
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from groupexp_da.engine.demo import run_demo

    run_demo(
        a.out,
        frames_source=a.frames_source,
        frames_target=a.frames_target,
        epochs=a.epochs,
        st3d_epochs=a.st3d_epochs,
        rounds=a.rounds,
        seed=a.seed,
        oracle=a.oracle,
        workers=a.workers,
        plain_source=a.plain_source,
        method=a.method,
        groupexp_rounds=a.groupexp_rounds,
        groupexp_epochs=a.groupexp_epochs,
    )
    return 0


def cmd_recall(a: argparse.Namespace) -> int:
    from groupexp_da.eval.recall_run import run_recall

    res = run_recall(
        a.info,
        a.out,
        checkpoint=a.checkpoint,
        config=a.config,
        pseudo=a.pseudo,
        score_thr=a.score_thr,
        iou_thr=a.iou,
        device=a.device,
    )
    for name, t in res["tables"].items():
        print(
            f"{name}: recall {t['recall']:.3f} over {t['gt']} GT cars (>= 5 points), "
            f"worst bin {t['worst_bin_recall']}, cv {t['cv']}"
        )
    print(f"wrote {res['paths']['json']} and {res['paths']['png']}")
    return 0


def cmd_convert(a: argparse.Namespace) -> int:
    from groupexp_da.data.convert import convert

    for split, p in convert(a.dataset, a.root, a.out).items():
        print(f"{split}: {p}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="groupexp-da",
        description=(
            "Cross-domain LiDAR car detection on mmdet3d: alignment, CPU KITTI AP, "
            "synthetic domain-shift benchmark, ST3D and GroupEXP-DA self-training."
        ),
    )
    p.add_argument("-v", "--verbose", action="store_true", help="show the traceback on errors")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="ray-cast a synthetic LiDAR domain (.bin + info pkls)")
    s.add_argument("--out", required=True)
    s.add_argument("--domain", choices=["source", "target"], default="source")
    s.add_argument("--frames", type=int, default=100)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--beams", type=int, default=None, help="override the beam count")
    s.add_argument("--val-fraction", type=float, default=0.2)
    s.set_defaults(func=cmd_synth)

    def common(sp, target=True, source=True):
        sp.add_argument("config", help="config path or shipped config name")
        if source:
            sp.add_argument("--source", help="source-domain data root")
        if target:
            sp.add_argument("--target", help="target-domain data root")
        sp.add_argument("--work-dir")
        sp.add_argument("--device", choices=["cpu", "cuda"], default=None)
        sp.add_argument("--cfg-options", nargs="*", metavar="KEY=VALUE")

    t = sub.add_parser("train", help="train a detector with mmengine's Runner")
    common(t)
    t.add_argument("--epochs", type=int)
    t.add_argument("--resume", action="store_true", help="resume from the work dir")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("test", help="evaluate a checkpoint (Car AP R11/R40, BEV/3D)")
    common(e, source=False)
    e.add_argument("checkpoint")
    e.add_argument("--out", help="write the metrics JSON here")
    e.set_defaults(func=cmd_test)

    d = sub.add_parser("adapt", help="self-training rounds on the target (ST3D or GroupEXP config)")
    common(d)
    d.add_argument("--source-ckpt", required=True)
    d.add_argument("--rounds", type=int)
    d.add_argument("--epochs-per-round", type=int)
    d.set_defaults(func=cmd_adapt)

    w = sub.add_parser("show", help="BEV plot of points, GT, predictions, pseudo labels")
    w.add_argument("--info", required=True, help="info pkl")
    w.add_argument("--index", type=int, default=0)
    w.add_argument("--data-root", help="folder the info's lidar_path is relative to")
    w.add_argument("--load-dim", type=int)
    w.add_argument("--gt-format", default="lidar", choices=["lidar", "kitti", "nuscenes", "waymo"])
    w.add_argument("--config", default="pointpillars_synth_source_only_cpu")
    w.add_argument("--checkpoint")
    w.add_argument("--pseudo", help="pseudo-label pkl written by adapt")
    w.add_argument("--out", required=True)
    w.set_defaults(func=cmd_show)

    m = sub.add_parser(
        "demo", help="synth -> ROS PointPillars -> ST3D and/or GroupEXP rounds -> AP, plots, recall"
    )
    m.add_argument("--out", required=True)
    m.add_argument("--frames-source", type=int, default=200)
    m.add_argument("--frames-target", type=int, default=100)
    m.add_argument("--epochs", type=int, default=6)
    m.add_argument("--st3d-epochs", type=int, default=2)
    m.add_argument("--rounds", type=int, default=1, help="ST3D rounds")
    m.add_argument("--oracle", action="store_true", help="also train the target oracle")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--workers", type=int, default=0, help="data-loading processes per loader")
    m.add_argument(
        "--plain-source",
        action="store_true",
        help="also train the source-only baseline without ROS (the paper's row)",
    )
    m.add_argument(
        "--method",
        choices=["st3d", "groupexp", "both"],
        default="st3d",
        help="self-training method(s) after the shared ROS stage 1",
    )
    m.add_argument("--groupexp-rounds", type=int, help="GroupEXP rounds (default max(rounds, 2))")
    m.add_argument(
        "--groupexp-epochs", type=int, help="epochs per GroupEXP round (default: --st3d-epochs)"
    )
    m.set_defaults(func=cmd_demo)

    r = sub.add_parser("recall", help="recall heatmap by GT point count x car volume (x distance)")
    r.add_argument("--info", required=True, help="info pkl with GT (LiDAR-frame boxes)")
    r.add_argument("--checkpoint", help="score this checkpoint's detections")
    r.add_argument("--config", default="pointpillars_synth_source_only_cpu")
    r.add_argument("--pseudo", help="score these pseudo labels (pkl written by adapt)")
    r.add_argument("--score-thr", type=float, default=0.3)
    r.add_argument("--iou", type=float, default=0.7, help="BEV IoU for a match")
    r.add_argument("--device", default="cpu")
    r.add_argument("--out", required=True, help="folder for recall.json + recall_heatmap.png")
    r.set_defaults(func=cmd_recall)

    c = sub.add_parser("convert", help="mmdet3d's converters -> v2 info pkls the configs read")
    c.add_argument("dataset", choices=["kitti", "nuscenes", "waymo"])
    c.add_argument("--root", required=True, help="dataset root (left untouched)")
    c.add_argument("--out", required=True, help="writable folder for infos (+ reduced points)")
    c.set_defaults(func=cmd_convert)
    return p


def main(argv: list[str] | None = None) -> int:
    """Console entry point: bad input exits with status 2 and one line naming the file."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (GroupExpError, OSError, ValueError, KeyError, EOFError) as exc:
        if args.verbose:
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        parser.exit(2, f"{parser.prog}: error: {message}\n")


if __name__ == "__main__":
    sys.exit(main())
