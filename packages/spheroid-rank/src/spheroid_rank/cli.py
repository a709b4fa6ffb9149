"""Command line: ``spheroid-rank <subcommand>``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from importlib import resources
from pathlib import Path

import yaml

log = logging.getLogger("spheroid_rank")


def _config(name: str) -> dict:
    return yaml.safe_load(resources.files("spheroid_rank.configs").joinpath(name).read_text())


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True,
                   help="folder plate_<id>/day_<d>/<well>.<ext> with layout.csv, or a metadata CSV")
    p.add_argument("--all-wells", action="store_true",
                   help="keep the outer wells (default: inner 60 only, rows B-G, columns 2-11)")
    p.add_argument("--on-missing", choices=["error", "exclude"], default="error",
                   help="a well without the target-day image: stop (default) or exclude it")
    p.add_argument("--target-day", type=int, default=10)
    p.add_argument("--focal", choices=["sharpest", "channels", "mean"], default="sharpest",
                   help="3-plane focal stacks: sharpest plane, planes as channels, or mean")


def _load(args) -> pd.DataFrame:  # noqa: F821
    from spheroid_rank.data.metadata import load_experiment

    return load_experiment(args.data, inner_only=not args.all_wells,
                           target_day=args.target_day, on_missing=args.on_missing)


def cmd_synth(args) -> int:
    from spheroid_rank.data.synth import make_synthetic_experiment

    truth = make_synthetic_experiment(args.out, seed=args.seed, n_plates=args.plates,
                                      days=tuple(args.days), size=args.size, bits=args.bits,
                                      focal_stack=args.focal_stack)
    n = args.plates * 60 * len(args.days)
    print(f"wrote {n} images of {args.plates} plate(s) to {args.out}")
    print(truth.to_string(index=False))
    return 0


def cmd_validate(args) -> int:
    t = _load(args)
    from spheroid_rank.engine.embed import write_csv

    print(f"{len(t)} images, {t[['plate', 'well']].drop_duplicates().shape[0]} wells, "
          f"{t['plate'].nunique()} plate(s), days {sorted(t['day'].unique().tolist())}")
    print(t.groupby("group")["well"].count().rename("images").to_string())
    if args.out:
        write_csv(t, args.out)
        print(f"metadata table -> {args.out}")
    return 0


def cmd_morphology(args) -> int:
    from spheroid_rank.engine.embed import write_csv
    from spheroid_rank.eval.morphology import morphology_table

    t = _load(args)
    m = morphology_table(t, overlay_dir=args.overlays, focal=args.focal)
    write_csv(m, args.out)
    cols = ["area", "circularity", "solidity", "mean_intensity", "debris_fraction"]
    print(m.groupby(["group", "day"])[cols].median().round(3).to_string())
    print(f"{len(m)} images measured -> {args.out}")
    return 0


def cmd_train(args) -> int:
    from spheroid_rank.engine.train import SSLConfig, train_ssl

    t = _load(args)
    devices = int(args.devices) if str(args.devices).lstrip("-").isdigit() else args.devices
    cfg = SSLConfig(method=args.method, backbone=args.backbone, img_size=args.img_size,
                    load_size=args.img_size + args.img_size // 8, focal=args.focal,
                    epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                    workers=args.workers, accelerator=args.accelerator, devices=devices,
                    precision=args.precision)
    path = train_ssl(t, args.out, cfg, progress=not args.no_progress)
    print(f"trained {cfg.method}/{cfg.backbone} on {len(t)} images -> {path}")
    return 0


def cmd_embed(args) -> int:
    from spheroid_rank.engine.embed import embeddings_frame, extract, load_model, write_csv

    t = _load(args)
    model, cfg = load_model(args.model)
    t0 = time.perf_counter()
    emb = extract(model, t, cfg, device=args.device, batch_size=args.batch_size)
    dt = time.perf_counter() - t0
    write_csv(embeddings_frame(t, emb), args.out)
    print(f"{emb.shape[0]} embeddings of dim {emb.shape[1]} in {dt:.1f} s -> {args.out}")
    return 0


def _score_cfg(args):
    from spheroid_rank.eval.scores import ScoreConfig

    return ScoreConfig(model=args.temporal, metric=args.metric, history=tuple(args.history),
                       target=args.target_day, pca_dim=args.pca_dim, seed=args.seed)


def _print_ranking(out: Path, summary: dict) -> None:
    import pandas as pd

    r = pd.read_csv(out / "ranking.csv")
    cols = ["rank", "condition", "n_wells", "score_median", "ci_low", "ci_high", "z_score"]
    print(r[cols].to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(json.dumps(summary))
    print(f"report -> {out / 'report.html'}")


def cmd_rank(args) -> int:
    import pandas as pd

    from spheroid_rank.engine.embed import read_embeddings
    from spheroid_rank.engine.pipeline import _attach_truth, rank_experiment

    meta, emb = read_embeddings(args.embeddings)
    if args.truth_from:
        meta = _attach_truth(meta, Path(args.truth_from))
    morph = None
    if args.morphology:
        morph = pd.read_csv(args.morphology, dtype={"plate": str})
    out = Path(args.out)
    summary = rank_experiment(meta, emb, out, _score_cfg(args), morph, args.positive)
    _print_ranking(out, summary)
    return 0


def cmd_evaluate(args) -> int:
    from spheroid_rank.engine.embed import read_embeddings, write_csv
    from spheroid_rank.eval.probe import knn_accuracy, linear_probe

    meta, emb = read_embeddings(args.embeddings)
    probe = linear_probe(meta, emb, min_day=args.min_day, seed=args.seed)
    knn = knn_accuracy(meta, emb, min_day=args.min_day, seed=args.seed)
    print("linear probe (logistic regression):")
    print(probe.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(f"kNN (k={knn['k']}): accuracy {knn['accuracy']:.3f}")
    result = {"linear_probe": probe.to_dict("records"), "knn": knn}
    if args.baseline:
        from spheroid_rank.engine.supervised import supervised_baseline

        base = supervised_baseline(meta, backbone=args.baseline_backbone, epochs=args.epochs,
                                   min_day=args.min_day, seed=args.seed)
        print(f"supervised {base['backbone']} baseline: accuracy {base['accuracy']:.3f}")
        result["supervised_baseline"] = base
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
        write_csv(probe, Path(args.out).with_suffix(".probe.csv"))
    return 0


def cmd_demo(args) -> int:
    from spheroid_rank.engine.demo import run_demo

    return run_demo(Path(args.out), seed=args.seed, epochs=args.epochs)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="spheroid-rank", description=(
        "Rank drug combinations by efficacy from bright-field spheroid time series "
        "(SSL embeddings + temporal model trained on untreated wells)."))
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (demo default: 1; shared machines run faster so)")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("synth", help="render a synthetic experiment with a known efficacy order")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plates", type=int, default=2)
    p.add_argument("--days", type=int, nargs="+", default=[7, 8, 9, 10])
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--bits", type=int, choices=[8, 16], default=8)
    p.add_argument("--focal-stack", action="store_true", help="write 3-plane focal-stack TIFFs")
    p.set_defaults(fn=cmd_synth)

    p = sub.add_parser("validate", help="build and check the metadata table")
    _data_args(p)
    p.add_argument("--out", help="write the metadata table as CSV")
    p.set_defaults(fn=cmd_validate)

    p = sub.add_parser("morphology", help="segment spheroids and measure shape/intensity")
    _data_args(p)
    p.add_argument("--out", required=True, help="CSV file")
    p.add_argument("--overlays", help="folder for segmentation overlay PNGs")
    p.set_defaults(fn=cmd_morphology)

    ssl = _config("default.yaml")["ssl"]
    p = sub.add_parser("train", help="self-supervised training (lightly + Lightning)")
    _data_args(p)
    p.add_argument("--out", required=True)
    p.add_argument("--method", choices=["simclr", "byol", "dino", "mae"], default=ssl["method"])
    p.add_argument("--backbone", default=ssl["backbone"], help="timm model name")
    p.add_argument("--img-size", type=int, default=ssl["img_size"])
    p.add_argument("--epochs", type=int, default=ssl["epochs"])
    p.add_argument("--batch-size", type=int, default=ssl["batch_size"])
    p.add_argument("--lr", type=float, default=ssl["lr"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--accelerator", default="auto")
    p.add_argument("--devices", default="1", help="GPUs (>1 uses DDP)")
    p.add_argument("--precision", default=None, help="default: 16-mixed on CUDA, else 32-true")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("embed", help="export embeddings with their metadata (CSV)")
    _data_args(p)
    p.add_argument("--model", required=True, help="backbone.pt written by train")
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=128)
    p.set_defaults(fn=cmd_embed)

    sc = _config("default.yaml")["score"]
    p = sub.add_parser("rank", help="temporal model + scores + ranking.csv + report.html")
    p.add_argument("--embeddings", required=True)
    p.add_argument("--morphology", help="morphology CSV for the morphology-only ranking")
    p.add_argument("--out", required=True)
    p.add_argument("--temporal", choices=["linear", "mlp", "gru", "ldp"], default=sc["model"])
    p.add_argument("--metric", choices=["l2", "cosine", "mahalanobis"], default=sc["metric"])
    p.add_argument("--history", type=int, nargs="+", default=sc["history"])
    p.add_argument("--target-day", type=int, default=sc["target"])
    p.add_argument("--pca-dim", type=int, default=sc["pca_dim"])
    p.add_argument("--positive", help="positive-control condition (default: single_dose wells)")
    p.add_argument("--truth-from", help="data folder whose layout.csv has true_efficacy")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=cmd_rank)

    p = sub.add_parser("evaluate", help="linear probe 10/20/30/all, kNN, supervised baseline")
    p.add_argument("--embeddings", required=True)
    p.add_argument("--out", help="JSON file")
    p.add_argument("--min-day", type=int, default=8)
    p.add_argument("--baseline", action="store_true", help="also train a supervised ResNet-18")
    p.add_argument("--baseline-backbone", default="resnet18")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=cmd_evaluate)

    p = sub.add_parser("demo", help="synth -> SSL -> temporal -> rank -> report (< 5 min CPU)")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="override SSL epochs")
    p.set_defaults(fn=cmd_demo)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from spheroid_rank.data.io import ImageReadError
    from spheroid_rank.data.metadata import MetadataError

    threads = args.threads or (1 if args.cmd == "demo" else None)
    if threads:
        import torch

        torch.set_num_threads(threads)
    try:
        return int(args.fn(args) or 0)
    except (MetadataError, ImageReadError, FileNotFoundError) as exc:
        print(f"spheroid-rank: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
