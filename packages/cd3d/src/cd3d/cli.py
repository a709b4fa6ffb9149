"""Command line: ``cd3d {synth,stats,train,eval,predict,volume,demo,models}``.

Handlers only turn arguments into one library call and print its result as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from .data.io import CD3DError

USER_ERRORS = (CD3DError, OSError, ValueError, KeyError, EOFError)


def _user_error(exc: BaseException) -> bool:
    """Bad input rather than a bug: the errors above, or rasterio's (only if rasterio was loaded:
    the handlers import the heavy libraries themselves, so ``--help`` starts fast)."""
    rio = sys.modules.get("rasterio.errors")
    return isinstance(exc, USER_ERRORS) or (rio is not None and isinstance(exc, rio.RasterioError))


def _print(obj: object) -> int:
    print(json.dumps(obj, indent=2, default=str))
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from .data.synth import write_synthetic

    return _print(
        write_synthetic(
            args.out, args.seed, args.train, args.val, args.test, args.tile, args.layout, args.large
        )
    )


def cmd_stats(args: argparse.Namespace) -> int:
    from .data.stats import compute_stats

    return _print(compute_stats(args.data, args.split, args.layout, out=args.out))


def cmd_train(args: argparse.Namespace) -> int:
    from .engine.train import train_from_config

    resume = None if args.no_resume else (args.resume or "auto")
    res = train_from_config(args.config, args.set, args.data, args.out, resume)
    return _print(res) if res["rank"] == 0 else 0  # one report per run, also under DDP


def cmd_eval(args: argparse.Namespace) -> int:
    from .engine.checkpoint import load_predictor
    from .eval.evaluate import evaluate

    det = load_predictor(args.checkpoint, args.baseline, args.data, args.layout)
    return _print(
        evaluate(
            det,
            args.data,
            args.split,
            args.out,
            args.layout,
            args.batch_size,
            args.tta,
            args.device,
        )
    )


def cmd_predict(args: argparse.Namespace) -> int:
    from .engine.checkpoint import load_detector
    from .engine.predict import PredictConfig, predict_rasters

    cfg = PredictConfig(
        tile=args.tile,
        overlap=args.overlap,
        batch_size=args.batch_size,
        tta=args.tta,
        output_2d=args.output_2d,
        threshold=args.threshold,
        device=args.device,
        amp=args.amp,
        channels_last=args.channels_last,
        compile=args.compile,
    )
    paths = predict_rasters(
        load_detector(args.checkpoint),
        args.before,
        args.after,
        args.out,
        cfg,
        align=args.align,
        progress=not args.quiet,
    )
    return _print({k: str(v) for k, v in paths.items()})


def cmd_volume(args: argparse.Namespace) -> int:
    from .eval.volume import footprint_report, volume_report

    if args.footprints:
        res = footprint_report(
            args.change_3d, args.footprints, args.out, args.min_height, args.id_field
        )
        top = sorted(res["buildings"], key=lambda r: -abs(r["volume_m3"]))[: args.top]
        return _print({"summary": res["summary"], "largest": top, "geojson": args.out})
    res = volume_report(args.change_3d, args.out, args.min_height, args.min_area, args.change_2d)
    top = sorted(res["regions"], key=lambda r: -abs(r["volume_m3"]))[: args.top]
    return _print({"summary": res["summary"], "largest": top, "geojson": args.out})


def cmd_demo(args: argparse.Namespace) -> int:
    from .engine.demo import run_demo

    return _print(run_demo(args.out, quick=args.quick, seed=args.seed))


def cmd_models(args: argparse.Namespace) -> int:
    from .models import list_models

    print("\n".join(list_models()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser with one sub-command per task."""
    parser = argparse.ArgumentParser(
        prog="cd3d", description="2D + 3D change detection from bitemporal orthophotos"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show the traceback on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser(
        "synth", help="write a synthetic 3DCD-layout dataset of georeferenced GeoTIFFs"
    )
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--train", type=int, default=32)
    s.add_argument("--val", type=int, default=8)
    s.add_argument("--test", type=int, default=12)
    s.add_argument("--tile", type=int, default=400)
    s.add_argument("--layout", choices=["3dcd", "t1t2"], default="3dcd")
    s.add_argument(
        "--large", type=int, default=0, help="also write a SIZE² before/after pair under OUT/large"
    )
    s.set_defaults(func=cmd_synth)

    s = sub.add_parser("stats", help="normalisation statistics of a split (JSON)")
    s.add_argument("--data", required=True)
    s.add_argument("--split", default="train")
    s.add_argument("--layout", default="auto")
    s.add_argument("--out", help="also write the JSON here")
    s.set_defaults(func=cmd_stats)

    s = sub.add_parser(
        "train", help="train with Lightning from a YAML config (resumes from last.ckpt)"
    )
    s.add_argument(
        "--config",
        default=None,
        help="YAML file or packaged name (siam_unet.yaml, mtbit.yaml, gpu.yaml)",
    )
    s.add_argument("--data", help="dataset root (sets data.root)")
    s.add_argument("--out", help="run folder (sets out)")
    s.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config key, e.g. trainer.max_epochs=5",
    )
    s.add_argument(
        "--resume", help="checkpoint to resume from (default: OUT/checkpoints/last.ckpt if present)"
    )
    s.add_argument(
        "--no-resume", action="store_true", help="start from scratch even if last.ckpt exists"
    )
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("eval", help="metrics.json, per_tile.csv and figure.png on a split")
    s.add_argument("--checkpoint")
    s.add_argument(
        "--baseline", choices=["nochange", "colourdiff"], help="evaluate a trivial baseline instead"
    )
    s.add_argument("--data", required=True)
    s.add_argument("--split", default="test")
    s.add_argument("--layout", default="auto")
    s.add_argument("--out", required=True)
    s.add_argument("--batch-size", type=int, default=4)
    s.add_argument(
        "--tta", nargs="?", const="flip", choices=["flip", "d4"], help="flip or D4 averaging"
    )
    s.add_argument("--device", default="cpu")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser(
        "predict", help="tiled georeferenced prediction on a raster pair of any size"
    )
    s.add_argument("--before", required=True)
    s.add_argument("--after", required=True)
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--tile", type=int, default=400)
    s.add_argument("--overlap", type=int, default=64)
    s.add_argument("--batch-size", type=int, default=4)
    s.add_argument(
        "--tta",
        nargs="?",
        const="flip",
        choices=["flip", "d4"],
        help="average over the 4 flips (--tta, --tta flip) or the 8 flips/rotations of D4 (--tta d4)",
    )
    s.add_argument("--align", action="store_true", help="warp --after onto the grid of --before")
    s.add_argument(
        "--output-2d",
        choices=["prob", "mask"],
        default="prob",
        help="prob: uint8 round(p*254); mask: 0/1 at --threshold; 255 = nodata in both",
    )
    s.add_argument("--threshold", type=float, default=0.5)
    s.add_argument("--device", default="cpu")
    s.add_argument(
        "--amp", action=argparse.BooleanOptionalAction, help="bf16 autocast (default: on with CUDA)"
    )
    s.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        help="channels_last memory format (default: on with CUDA)",
    )
    s.add_argument("--compile", action="store_true", help="torch.compile the network first")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_predict)

    s = sub.add_parser(
        "volume", help="volume change per building footprint, or per changed region (GeoJSON)"
    )
    s.add_argument("--change-3d", required=True)
    s.add_argument("--out", required=True)
    s.add_argument(
        "--footprints", help="building polygons (GeoJSON, GeoPackage, ...): one row per building"
    )
    s.add_argument(
        "--id-field", help="footprint attribute used as the id (default: 'id', else the feature id)"
    )
    s.add_argument(
        "--change-2d", help="region mode: keep cells the 2D map of the same prediction detects"
    )
    s.add_argument("--min-height", type=float, default=1.0)
    s.add_argument(
        "--min-area", type=float, default=0.0, help="drop regions smaller than this (m²)"
    )
    s.add_argument("--top", type=int, default=5, help="regions to print")
    s.set_defaults(func=cmd_volume)

    s = sub.add_parser("demo", help="synth → train → eval → large-raster predict → volume, on CPU")
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--quick", action="store_true", help="tiny sizes (for tests)")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("models", help="list registered model names")
    s.set_defaults(func=cmd_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Console entry point: bad input exits with status 2 and one line naming the file."""
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    try:
        return int(args.func(args) or 0)
    except Exception as exc:
        if args.verbose or not _user_error(exc):
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        parser.exit(2, f"{parser.prog}: error: {message}\n")


if __name__ == "__main__":
    sys.exit(main())
