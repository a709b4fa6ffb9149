"""Command line: ``cd3d {synth,stats,train,eval,predict,volume,demo,models}``."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path


def _synth(a: argparse.Namespace) -> int:
    from .data.synth import synth_dataset, synth_pair

    root = synth_dataset(a.out, a.seed, a.train, a.val, a.test, a.tile, a.layout)
    msg = {"dataset": str(root), "tiles": {"train": a.train, "val": a.val, "test": a.test}, "tile": a.tile}
    if a.large:
        msg["large_pair"] = {k: str(v) for k, v in synth_pair(Path(a.out) / "large", a.large, a.seed + 1).items()}
    print(json.dumps(msg, indent=2))
    return 0


def _stats(a: argparse.Namespace) -> int:
    from .data.stats import compute_stats, write_json

    st = compute_stats(a.data, a.split, a.layout)
    if a.out:
        write_json(st, a.out)
    print(json.dumps(st, indent=2))
    return 0


def _train(a: argparse.Namespace) -> int:
    from .engine.config import load_config
    from .engine.train import train

    sets = list(a.set or [])
    if a.data:
        sets.append(f"data.root={a.data}")
    if a.out:
        sets.append(f"out={a.out}")
    cfg = load_config(a.config, sets)
    res = train(cfg, resume=None if a.no_resume else (a.resume or "auto"))
    print(json.dumps(res, indent=2))
    return 0


def _eval(a: argparse.Namespace) -> int:
    from .eval.evaluate import evaluate

    if a.baseline == "nochange":
        from .eval.baselines import NoChange

        det = NoChange()
    elif a.baseline == "colourdiff":
        from .data.dataset import ChangeDataset
        from .eval.baselines import ColourDiff

        det = ColourDiff.fit(ChangeDataset(a.data, "train", a.layout))
    else:
        if not a.checkpoint:
            raise ValueError("--checkpoint is required unless --baseline is given")
        from .engine.checkpoint import load_detector

        det = load_detector(a.checkpoint)
    res = evaluate(det, a.data, a.split, a.out, a.layout, a.batch_size, a.tta, a.device)
    print(json.dumps(res, indent=2))
    return 0


def _predict(a: argparse.Namespace) -> int:
    from .engine.checkpoint import load_detector
    from .engine.predict import PredictConfig, predict_rasters

    det = load_detector(a.checkpoint)
    cfg = PredictConfig(tile=a.tile, overlap=a.overlap, batch_size=a.batch_size, tta=a.tta,
                        output_2d=a.output_2d, threshold=a.threshold, device=a.device, amp=a.amp)
    paths = predict_rasters(det, a.before, a.after, a.out, cfg, align=a.align, progress=not a.quiet)
    print(json.dumps({k: str(v) for k, v in paths.items()}, indent=2))
    return 0


def _volume(a: argparse.Namespace) -> int:
    from .eval.volume import volume_report

    res = volume_report(a.change_3d, a.out, a.min_height, a.min_area, a.change_2d)
    top = sorted(res["regions"], key=lambda r: -abs(r["volume_m3"]))[: a.top]
    print(json.dumps({"summary": res["summary"], "largest": top, "geojson": a.out}, indent=2))
    return 0


def _demo(a: argparse.Namespace) -> int:
    from .engine.demo import run_demo

    res = run_demo(a.out, quick=a.quick, seed=a.seed)
    print(json.dumps(res, indent=2))
    return 0


def _models(a: argparse.Namespace) -> int:
    from .models import list_models

    print("\n".join(list_models()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser with one sub-command per task."""
    p = argparse.ArgumentParser(prog="cd3d", description="2D + 3D change detection from bitemporal orthophotos")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    s = sub.add_parser("synth", help="write a synthetic 3DCD-layout dataset of georeferenced GeoTIFFs")
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--train", type=int, default=32)
    s.add_argument("--val", type=int, default=8)
    s.add_argument("--test", type=int, default=12)
    s.add_argument("--tile", type=int, default=400)
    s.add_argument("--layout", choices=["3dcd", "t1t2"], default="3dcd")
    s.add_argument("--large", type=int, default=0, help="also write a SIZE² before/after pair under OUT/large")
    s.set_defaults(fn=_synth)

    s = sub.add_parser("stats", help="normalisation statistics of a split (JSON)")
    s.add_argument("--data", required=True)
    s.add_argument("--split", default="train")
    s.add_argument("--layout", default="auto")
    s.add_argument("--out", help="also write the JSON here")
    s.set_defaults(fn=_stats)

    s = sub.add_parser("train", help="train with Lightning from a YAML config (resumes from last.ckpt)")
    s.add_argument("--config", default=None, help="YAML file or packaged name (siam_unet.yaml, mtbit.yaml, gpu.yaml)")
    s.add_argument("--data", help="dataset root (sets data.root)")
    s.add_argument("--out", help="run folder (sets out)")
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. trainer.max_epochs=5")
    s.add_argument("--resume", help="checkpoint to resume from (default: OUT/checkpoints/last.ckpt if present)")
    s.add_argument("--no-resume", action="store_true", help="start from scratch even if last.ckpt exists")
    s.set_defaults(fn=_train)

    s = sub.add_parser("eval", help="metrics.json, per_tile.csv and figure.png on a split")
    s.add_argument("--checkpoint")
    s.add_argument("--baseline", choices=["nochange", "colourdiff"], help="evaluate a trivial baseline instead")
    s.add_argument("--data", required=True)
    s.add_argument("--split", default="test")
    s.add_argument("--layout", default="auto")
    s.add_argument("--out", required=True)
    s.add_argument("--batch-size", type=int, default=4)
    s.add_argument("--tta", action="store_true")
    s.add_argument("--device", default="cpu")
    s.set_defaults(fn=_eval)

    s = sub.add_parser("predict", help="tiled georeferenced prediction on a raster pair of any size")
    s.add_argument("--before", required=True)
    s.add_argument("--after", required=True)
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--tile", type=int, default=400)
    s.add_argument("--overlap", type=int, default=64)
    s.add_argument("--batch-size", type=int, default=4)
    s.add_argument("--tta", action="store_true", help="average over flips")
    s.add_argument("--align", action="store_true", help="warp --after onto the grid of --before")
    s.add_argument("--output-2d", choices=["prob", "mask"], default="prob",
                   help="prob: uint8 round(p*254); mask: 0/1 at --threshold; 255 = nodata in both")
    s.add_argument("--threshold", type=float, default=0.5)
    s.add_argument("--device", default="cpu")
    s.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(fn=_predict)

    s = sub.add_parser("volume", help="changed regions with area and volume as GeoJSON")
    s.add_argument("--change-3d", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--change-2d", help="change_2d.tif of the same prediction: keep cells detected in 2D")
    s.add_argument("--min-height", type=float, default=1.0)
    s.add_argument("--min-area", type=float, default=0.0, help="drop regions smaller than this (m²)")
    s.add_argument("--top", type=int, default=5, help="regions to print")
    s.set_defaults(fn=_volume)

    s = sub.add_parser("demo", help="synth → train → eval → large-raster predict → volume, on CPU")
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--quick", action="store_true", help="tiny sizes (for tests)")
    s.set_defaults(fn=_demo)

    s = sub.add_parser("models", help="list registered model names")
    s.set_defaults(fn=_models)
    return p


def main(argv: list[str] | None = None) -> int:
    """Console entry point; errors in inputs exit with status 2 and a message naming the file."""
    args = build_parser().parse_args(argv)
    from .data.io import DataError

    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    try:
        return args.fn(args)
    except (DataError, ValueError, FileNotFoundError, KeyError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"cd3d: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
