"""Command line: ``spheroid-rank <subcommand>``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from importlib import import_module
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

from spheroid_rank.data.io import SpheroidRankError
from spheroid_rank.engine.config import ScoreConfig, SSLConfig

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("spheroid_rank")


def field_defaults(config_class: type) -> SimpleNamespace:
    """A config dataclass's field defaults, read without constructing (and validating) it."""
    return SimpleNamespace(
        **{f.name: f.default for f in dataclasses.fields(config_class) if f.init}
    )


class RegistryChoices:
    """argparse ``choices`` read from a registry only when a value is checked or listed.

    The registries live next to lightly/timm imports; reading them lazily keeps
    ``spheroid-rank --help`` and bad-input calls from importing the whole stack.
    Give such arguments a ``metavar``: argparse lists the choices of one without it
    while the parser is being built.
    """

    def __init__(self, module: str, name: str) -> None:
        self._load: Callable[[], list[str]] = lambda: sorted(getattr(import_module(module), name))

    def __contains__(self, value: object) -> bool:
        return value in self._load()

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        required=True,
        help="folder plate_<id>/day_<d>/<well>.<ext> with layout.csv, or a metadata CSV",
    )
    p.add_argument(
        "--all-wells",
        action="store_true",
        help="keep the outer wells (default: inner 60 only, rows B-G, columns 2-11)",
    )
    p.add_argument(
        "--on-missing",
        choices=["error", "exclude"],
        default="error",
        help="a well without the target-day image: stop (default) or exclude it",
    )
    p.add_argument("--target-day", type=int, default=10)
    p.add_argument(
        "--focal",
        choices=["sharpest", "channels", "mean"],
        default="sharpest",
        help="3-plane focal stacks: sharpest plane, planes as channels, or mean",
    )


def _load(args) -> pd.DataFrame:
    from spheroid_rank.data.metadata import load_experiment

    return load_experiment(
        args.data,
        inner_only=not args.all_wells,
        target_day=args.target_day,
        on_missing=args.on_missing,
    )


def cmd_synth(args) -> int:
    from spheroid_rank.data.synth import make_synthetic_experiment

    truth = make_synthetic_experiment(
        args.out,
        seed=args.seed,
        n_plates=args.plates,
        days=tuple(args.days),
        size=args.size,
        bits=args.bits,
        focal_stack=args.focal_stack,
        preset=args.preset,
    )
    n = args.plates * 60 * len(args.days)
    print(f"wrote {n} images of {args.plates} plate(s) to {args.out}")
    print(truth.to_string(index=False))
    return 0


def cmd_validate(args) -> int:
    from spheroid_rank.data.io import write_csv

    t = _load(args)
    print(
        f"{len(t)} images, {t[['plate', 'well']].drop_duplicates().shape[0]} wells, "
        f"{t['plate'].nunique()} plate(s), days {sorted(t['day'].unique().tolist())}"
    )
    print(t.groupby("group")["well"].count().rename("images").to_string())
    if args.out:
        write_csv(args.out, t)
        print(f"metadata table -> {args.out}")
    return 0


def cmd_morphology(args) -> int:
    from spheroid_rank.data.io import write_csv
    from spheroid_rank.eval.morphology import morphology_table

    t = _load(args)
    m = morphology_table(
        t,
        overlay_dir=args.overlays,
        focal=args.focal,
        objects=args.objects,
        um_per_px=args.um_per_px,
    )
    write_csv(args.out, m)
    area = "area_um2" if args.um_per_px else "area"
    cols = [area, "circularity", "solidity", "mean_intensity"]
    if args.objects == "all":
        print(
            m.groupby("path")[cols]
            .median()
            .round(3)
            .assign(objects=m.groupby("path").size())
            .to_string()
        )
        print(f"{len(m)} objects in {len(t)} images -> {args.out}")
    else:
        cols += ["debris_fraction", "n_comparable"]
        print(m.groupby(["group", "day"])[cols].median().round(3).to_string())
        print(f"{len(m)} images measured -> {args.out}")
    return 0


def cmd_train(args) -> int:
    from spheroid_rank.engine.train import train_ssl

    t = _load(args)
    devices = int(args.devices) if str(args.devices).lstrip("-").isdigit() else args.devices
    cfg = SSLConfig(
        method=args.method,
        backbone=args.backbone,
        img_size=args.img_size,
        focal=args.focal,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        workers=args.workers,
        accelerator=args.accelerator,
        devices=devices,
        strategy=args.strategy,
        num_nodes=args.num_nodes,
        precision=args.precision,
    )
    path = train_ssl(t, args.out, cfg, progress=not args.no_progress)
    if path is None:  # a DDP process other than rank 0
        return 0
    print(f"trained {cfg.method}/{cfg.backbone} on {len(t)} images -> {path}")
    return 0


def cmd_embed(args) -> int:
    from spheroid_rank.data.io import write_csv
    from spheroid_rank.engine.checkpoint import load_model
    from spheroid_rank.engine.embed import embeddings_frame, extract

    t = _load(args)
    model, cfg = load_model(args.model)
    t0 = time.perf_counter()
    emb = extract(model, t, cfg, device=args.device, batch_size=args.batch_size)
    dt = time.perf_counter() - t0
    write_csv(args.out, embeddings_frame(t, emb))
    print(f"{emb.shape[0]} embeddings of dim {emb.shape[1]} in {dt:.1f} s -> {args.out}")
    return 0


def _score_cfg(args) -> ScoreConfig:
    return ScoreConfig(
        model=args.temporal,
        metric=args.metric,
        history=tuple(args.history),
        target=args.target_day,
        pca_dim=args.pca_dim,
        seed=args.seed,
    )


def _print_ranking(out: Path, summary: dict) -> None:
    import pandas as pd

    r = pd.read_csv(out / "ranking.csv")
    qc = pd.read_csv(out / "plate_qc.csv", dtype={"plate": str})
    print(qc.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    cols = [
        "rank",
        "condition",
        "n_wells",
        "score_median",
        "ci_low",
        "ci_high",
        "z_score",
        "qc_failed_wells",
    ]
    print(r[cols].to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(json.dumps(summary))
    print(f"report -> {out / 'report.html'}")


def cmd_rank(args) -> int:
    from spheroid_rank.engine.rank import rank_files

    out = Path(args.out)
    summary = rank_files(
        args.embeddings,
        out,
        _score_cfg(args),
        morphology=args.morphology,
        truth_from=args.truth_from,
        positive=args.positive,
        qc_threshold=args.qc_threshold,
        qc_action=args.qc_action,
    )
    _print_ranking(out, summary)
    return 0


def cmd_evaluate(args) -> int:
    from spheroid_rank.eval.probe import evaluate_embeddings

    res = evaluate_embeddings(
        args.embeddings,
        args.out,
        min_day=args.min_day,
        seed=args.seed,
        baseline=args.baseline,
        baseline_backbone=args.baseline_backbone,
        epochs=args.epochs,
    )
    import pandas as pd

    print("linear probe (logistic regression):")
    print(
        pd.DataFrame(res["linear_probe"]).to_string(index=False, float_format=lambda x: f"{x:.3f}")
    )
    knn = res["knn"]
    print(f"kNN (k={knn['k']}): accuracy {knn['accuracy']:.3f}")
    if "supervised_baseline" in res:
        base = res["supervised_baseline"]
        print(f"supervised {base['backbone']} baseline: accuracy {base['accuracy']:.3f}")
    return 0


def cmd_demo(args) -> int:
    from spheroid_rank.engine.demo import run_demo

    return run_demo(Path(args.out), seed=args.seed, epochs=args.epochs, preset=args.preset)


def build_parser() -> argparse.ArgumentParser:
    from spheroid_rank.engine.config import METRICS

    presets = RegistryChoices("spheroid_rank.data.synth", "PRESETS")
    ap = argparse.ArgumentParser(
        prog="spheroid-rank",
        description=(
            "Rank drug combinations by efficacy from bright-field spheroid time series "
            "(SSL embeddings + temporal model trained on untreated wells)."
        ),
    )
    ap.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the traceback on errors (and INFO log messages)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (demo default: 1; shared machines run faster so)",
    )
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="render a synthetic experiment with a known efficacy order")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plates", type=int, default=2)
    p.add_argument("--days", type=int, nargs="+", default=[7, 8, 9, 10])
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--bits", type=int, choices=[8, 16], default=8)
    p.add_argument("--focal-stack", action="store_true", help="write 3-plane focal-stack TIFFs")
    p.add_argument(
        "--preset",
        choices=presets,
        metavar="PRESET",
        default="easy",
        help="%(choices)s. easy: efficacy mostly in size; hard: size-preserving drug effects "
        "plus illumination/focus/debris/edge nuisances",
    )
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("validate", help="build and check the metadata table")
    _data_args(p)
    p.add_argument("--out", help="write the metadata table as CSV")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("morphology", help="segment spheroids and measure shape/intensity")
    _data_args(p)
    p.add_argument("--out", required=True, help="CSV file")
    p.add_argument("--overlays", help="folder for segmentation overlay PNGs")
    p.add_argument(
        "--objects",
        choices=["single", "all"],
        default="single",
        help="single: one spheroid per image (the most central large object; "
        "warns when there are several); all: one row per object "
        "(multi-organoid fields)",
    )
    p.add_argument(
        "--um-per-px",
        type=float,
        default=None,
        help="pixel size; adds area_um2, perimeter_um, feret_*_um, equivalent_diameter_um",
    )
    p.set_defaults(func=cmd_morphology)

    ssl = field_defaults(SSLConfig)
    p = sub.add_parser("train", help="self-supervised training (lightly + Lightning)")
    _data_args(p)
    p.add_argument("--out", required=True)
    p.add_argument(
        "--method",
        choices=RegistryChoices("spheroid_rank.models.ssl", "METHODS"),
        metavar="METHOD",
        default=ssl.method,
        help="SSL method: %(choices)s (default: %(default)s)",
    )
    p.add_argument("--backbone", default=ssl.backbone, help="timm model name")
    p.add_argument("--img-size", type=int, default=ssl.img_size)
    p.add_argument("--epochs", type=int, default=ssl.epochs)
    p.add_argument(
        "--batch-size",
        type=int,
        default=ssl.batch_size,
        help="global batch (split over the DDP processes)",
    )
    p.add_argument("--lr", type=float, default=ssl.lr)
    p.add_argument("--seed", type=int, default=ssl.seed)
    p.add_argument("--workers", type=int, default=ssl.workers)
    p.add_argument("--accelerator", default=ssl.accelerator)
    p.add_argument("--devices", default=str(ssl.devices), help="devices per machine (>1: DDP)")
    p.add_argument(
        "--strategy",
        default=ssl.strategy,
        help="Lightning strategy (default: ddp when more than one device)",
    )
    p.add_argument(
        "--num-nodes",
        type=int,
        default=ssl.num_nodes,
        help="machines (launch one process per machine with torchrun/SLURM)",
    )
    p.add_argument(
        "--precision", default=ssl.precision, help="default: 16-mixed on CUDA, else 32-true"
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("embed", help="export embeddings with their metadata (CSV)")
    _data_args(p)
    p.add_argument("--model", required=True, help="backbone.pt written by train")
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=128)
    p.set_defaults(func=cmd_embed)

    sc = field_defaults(ScoreConfig)
    p = sub.add_parser("rank", help="temporal model + scores + ranking.csv + report.html")
    p.add_argument("--embeddings", required=True)
    p.add_argument("--morphology", help="morphology CSV for the morphology-only ranking")
    p.add_argument("--out", required=True)
    p.add_argument(
        "--temporal",
        choices=RegistryChoices("spheroid_rank.models.temporal", "TEMPORAL_MODELS"),
        metavar="MODEL",
        default=sc.model,
        help="temporal model: %(choices)s (default: %(default)s)",
    )
    p.add_argument("--metric", choices=list(METRICS), default=sc.metric)
    p.add_argument("--history", type=int, nargs="+", default=list(sc.history))
    p.add_argument("--target-day", type=int, default=sc.target)
    p.add_argument("--pca-dim", type=int, default=sc.pca_dim)
    p.add_argument("--positive", help="positive-control condition (default: single_dose wells)")
    p.add_argument("--truth-from", help="data folder whose layout.csv has true_efficacy")
    p.add_argument(
        "--qc-threshold",
        type=float,
        default=0.5,
        help="a plate passes QC when its Z' (untreated vs positive) reaches this",
    )
    p.add_argument(
        "--qc-action",
        choices=["flag", "exclude"],
        default="flag",
        help="plates failing QC: keep and flag them (default) or drop their wells",
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_rank)

    p = sub.add_parser("evaluate", help="linear probe 10/20/30/all, kNN, supervised baseline")
    p.add_argument("--embeddings", required=True)
    p.add_argument("--out", help="JSON file")
    p.add_argument("--min-day", type=int, default=8)
    p.add_argument("--baseline", action="store_true", help="also train a supervised ResNet-18")
    p.add_argument("--baseline-backbone", default="resnet18")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("demo", help="synth -> SSL -> temporal -> rank -> report (< 5 min CPU)")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="override SSL epochs")
    p.add_argument(
        "--preset",
        choices=presets,
        metavar="PRESET",
        default="easy",
        help="data preset: %(choices)s",
    )
    p.set_defaults(func=cmd_demo)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Console entry point: bad input exits with status 2 and one line naming the file."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    threads = args.threads or (1 if args.command == "demo" else None)
    if threads:
        import torch

        torch.set_num_threads(threads)
    try:
        return int(args.func(args) or 0)
    except (SpheroidRankError, OSError, ValueError, KeyError, EOFError) as exc:
        if args.verbose:
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        parser.exit(2, f"{parser.prog}: error: {message}\n")


if __name__ == "__main__":
    sys.exit(main())
