"""``groupexp-da`` command line: synth, train, test, adapt, show, demo."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _kv(items: list[str] | None) -> dict:
    out = {}
    for it in items or []:
        if "=" not in it:
            raise SystemExit(f"--cfg-options expects KEY=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


# where ``show`` looks for an info's lidar_path below --data-root (first hit wins)
PTS_DIRS = ("", "points", "training/velodyne_reduced", "training/velodyne", "samples/LIDAR_TOP")


def cmd_synth(a: argparse.Namespace) -> int:
    from groupexp_da.data.synth import write_domain

    paths = write_domain(a.out, a.domain, a.frames, seed=a.seed, val_fraction=a.val_fraction,
                         beams=a.beams, progress=True)
    for split, p in paths.items():
        print(f"{split}: {p}")
    return 0


def _cfg(a: argparse.Namespace):
    from groupexp_da.engine.runner import load_config

    return load_config(a.config, source=getattr(a, "source", None),
                       target=getattr(a, "target", None), work_dir=a.work_dir,
                       cfg_options=_kv(a.cfg_options), device=getattr(a, "device", None))


def cmd_train(a: argparse.Namespace) -> int:
    from groupexp_da.engine.runner import build_runner

    cfg = _cfg(a)
    if a.epochs:
        cfg.train_cfg.max_epochs = a.epochs
        cfg.train_cfg.val_interval = a.epochs
    cfg.resume = a.resume
    runner = build_runner(cfg)
    runner.train()
    print(f"work dir: {cfg.work_dir}")
    return 0


def cmd_test(a: argparse.Namespace) -> int:
    from groupexp_da.engine.runner import build_runner

    cfg = _cfg(a)
    cfg.load_from = a.checkpoint
    metrics = build_runner(cfg).test()
    metrics = {k: round(float(v), 4) for k, v in metrics.items()}
    print(json.dumps(metrics, indent=1))
    if a.out:
        Path(a.out).write_text(json.dumps(metrics, indent=1))
    return 0


def cmd_adapt(a: argparse.Namespace) -> int:
    from groupexp_da.engine.st3d import adapt

    cfg = _cfg(a)
    if a.rounds is not None:
        cfg.st3d.rounds = a.rounds
    if a.epochs_per_round is not None:
        cfg.st3d.epochs_per_round = a.epochs_per_round
    hist = adapt(cfg, a.source_ckpt, cfg.work_dir, device=a.device or "cpu")
    for h in hist:
        m = h["metrics"]
        key = [k for k in m if "3D_R40_moderate" in k or "3D_R40_easy" in k]
        print(f"round {h['round']:>2}: " + ", ".join(f"{k}={m[k]:.2f}" for k in key)
              + (f"  labels={h['labels']}" if "labels" in h else ""))
    return 0


def cmd_show(a: argparse.Namespace) -> int:
    import mmengine
    import numpy as np

    from groupexp_da.data.io import read_points
    from groupexp_da.eval.gt import frame_id, gt_frame
    from groupexp_da.eval.plots import bev_plot

    data = mmengine.load(a.info)
    infos = data["data_list"]
    if not 0 <= a.index < len(infos):
        raise SystemExit(f"{a.info}: index {a.index} out of range (0..{len(infos) - 1})")
    info = infos[a.index]
    root = Path(a.data_root or Path(a.info).parent)
    lp = info["lidar_points"]
    cands = [root / sub / lp["lidar_path"] for sub in PTS_DIRS]
    pts_file = next((c for c in cands if c.is_file()), cands[0])
    pts = read_points(str(pts_file), int(a.load_dim or lp["num_pts_feats"]))
    gt = gt_frame(info, data.get("metainfo", {}), a.gt_format)
    gt_boxes = gt["boxes"][gt["names"] == "Car"]
    pred = scores = None
    if a.checkpoint:
        from groupexp_da.engine.inference import build_dataset, build_model, predict_dataset
        from groupexp_da.engine.runner import load_config

        cfg = load_config(a.config)
        ds = dict(cfg.test_dataloader.dataset)
        ds.update(data_root=str(root), ann_file=str(Path(a.info).resolve()),
                  indices=[a.index], data_prefix=dict(pts=str(pts_file.parent)))
        p = predict_dataset(build_model(cfg, a.checkpoint), build_dataset(ds))[0]
        pred, scores = p["boxes"], p["scores"]
    pseudo = plab = None
    if a.pseudo:
        pinfos = {frame_id(i): i for i in mmengine.load(a.pseudo)["data_list"]}
        inst = pinfos.get(frame_id(info), {}).get("instances", [])
        pseudo = np.array([i["bbox_3d"] for i in inst]).reshape(-1, 7)
        plab = np.array([i["bbox_label_3d"] for i in inst])
    out = bev_plot(a.out, pts, gt_boxes, pred, scores, pseudo, plab,
                   title=f"{Path(a.info).name} frame {frame_id(info)}")
    print(f"wrote {out}")
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from groupexp_da.engine.demo import run_demo

    run_demo(a.out, frames_source=a.frames_source, frames_target=a.frames_target,
             epochs=a.epochs, st3d_epochs=a.st3d_epochs, rounds=a.rounds, seed=a.seed,
             oracle=a.oracle, workers=a.workers,
             plain_source=a.plain_source)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="groupexp-da", description=(
        "Cross-domain LiDAR car detection on mmdet3d: alignment, CPU KITTI AP, "
        "synthetic domain-shift benchmark, ST3D self-training."))
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("synth", help="ray-cast a synthetic LiDAR domain (.bin + info pkls)")
    s.add_argument("--out", required=True)
    s.add_argument("--domain", choices=["source", "target"], default="source")
    s.add_argument("--frames", type=int, default=100)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--beams", type=int, default=None, help="override the beam count")
    s.add_argument("--val-fraction", type=float, default=0.2)
    s.set_defaults(fn=cmd_synth)

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
    t.set_defaults(fn=cmd_train)

    e = sub.add_parser("test", help="evaluate a checkpoint (Car AP R11/R40, BEV/3D)")
    common(e, source=False)
    e.add_argument("checkpoint")
    e.add_argument("--out", help="write the metrics JSON here")
    e.set_defaults(fn=cmd_test)

    d = sub.add_parser("adapt", help="ST3D self-training on the target domain")
    common(d)
    d.add_argument("--source-ckpt", required=True)
    d.add_argument("--rounds", type=int)
    d.add_argument("--epochs-per-round", type=int)
    d.set_defaults(fn=cmd_adapt)

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
    w.set_defaults(fn=cmd_show)

    m = sub.add_parser("demo", help="synth -> source PointPillars (ROS) -> ST3D round(s) -> AP table + BEV plots")
    m.add_argument("--out", required=True)
    m.add_argument("--frames-source", type=int, default=200)
    m.add_argument("--frames-target", type=int, default=100)
    m.add_argument("--epochs", type=int, default=6)
    m.add_argument("--st3d-epochs", type=int, default=2)
    m.add_argument("--rounds", type=int, default=1, help="ST3D rounds")
    m.add_argument("--oracle", action="store_true", help="also train the target oracle")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--workers", type=int, default=0, help="data-loading processes per loader")
    m.add_argument("--plain-source", action="store_true",
                   help="also train the source-only baseline without ROS (the paper's row)")
    m.set_defaults(fn=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.fn(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
