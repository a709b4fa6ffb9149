"""`bus-classify` command line: synth | split | train | eval | predict | gradcam | zero-shot | demo."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(show_path=False, show_time=False)],
        force=True,
    )
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).propagate = False


def cmd_synth(args) -> int:
    from bus_classify.data.synth import write_synthetic

    print(json.dumps(write_synthetic(args.out, n=args.n, size=args.size, seed=args.seed)))
    return 0


def cmd_split(args) -> int:
    from bus_classify.data.split import split_folder

    rows, report = split_folder(
        args.data,
        args.out,
        task=args.task,
        seed=args.seed,
        max_distance=args.hash_distance,
        strict=args.strict,
    )
    print(report.summary(show_groups=args.show_groups))
    print(f"wrote {args.out} ({len(rows)} images)")
    return 0


def cmd_train(args) -> int:
    from bus_classify.engine.config import load_config
    from bus_classify.engine.train import train

    overrides = {k: getattr(args, k) for k in TRAIN_CONFIG_FLAGS if getattr(args, k) is not None}
    cfg = load_config(args.config, {**_set_pairs(args.set), **overrides})
    best = train(
        cfg,
        args.split,
        args.out,
        device=args.device,
        devices=args.devices,
        strategy=args.strategy,
        trainer_kwargs={"num_nodes": args.num_nodes} if args.num_nodes > 1 else None,
        resume=args.resume,
        progress=not args.no_progress,
    )
    print(f"best checkpoint: {best}")
    return 0


def _set_pairs(items: list[str] | None) -> dict:
    import yaml

    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        out[key] = yaml.safe_load(value)
    return out


def cmd_eval(args) -> int:
    from bus_classify.eval.evaluate import evaluate

    m = evaluate(
        args.checkpoint,
        args.split,
        args.out,
        args.target_sensitivity,
        args.tta,
        args.device,
        calibration=args.calibrate,
        decision=args.decision,
    )
    print(json.dumps({k: m[k] for k in m if k != "details"}, indent=2))
    print(f"wrote {Path(args.out) / 'metrics.json'}, plots and summary.md")
    return 0


def cmd_predict(args) -> int:
    from bus_classify.eval.predict import predict_folder

    rows = predict_folder(
        args.checkpoint, args.images, args.out, args.calibration, args.tta, args.device
    )
    for r in rows[:10]:
        print(
            f"{Path(r['file']).name:32s} p={r['prob_lump']} p_cal={r['prob_lump_calibrated']} "
            f"{r['label']}"
        )
    print(f"wrote {args.out} ({len(rows)} images)")
    return 0


def cmd_gradcam(args) -> int:
    from bus_classify.eval.gradcam import gradcam_from_refs_or_split

    for p in gradcam_from_refs_or_split(
        args.checkpoint, args.out, args.images, args.split, args.n, args.target
    ):
        print(p)
    return 0


def cmd_zero_shot(args) -> int:
    from bus_classify.eval.zeroshot import zero_shot

    m = zero_shot(
        args.model_path,
        args.data,
        args.out,
        args.kind,
        args.prompts,
        args.split,
        args.device,
        args.max_new_tokens,
        args.limit,
    )
    d = m.get("details", {})
    print(
        json.dumps(
            {
                **{k: m[k] for k in m if k != "details"},
                **{k: d[k] for k in ("unparsed", "coverage") if k in d},
            },
            indent=2,
        )
    )
    return 0


def cmd_tiny_vlm(args) -> int:
    from bus_classify.models.tiny_vlm import build_tiny_vlms

    for p in build_tiny_vlms(args.out):
        print(p)
    return 0


def cmd_demo(args) -> int:
    from bus_classify.engine.demo import run_demo

    summary = run_demo(args.out, n=args.n, seed=args.seed, epochs=args.epochs, threads=args.threads)
    print(json.dumps(summary, indent=2))
    return 0


# `train` flags that set the run-config key of the same name (dest = key).
TRAIN_CONFIG_FLAGS = (
    "model",
    "weights",
    "loss",
    "sampler",
    "parula",
    "task",
    "epochs",
    "batch_size",
    "lr",
    "img_size",
    "seed",
    "num_workers",
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bus-classify", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="show the traceback on errors")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="write synthetic BUSI-layout ultrasound images")
    s.add_argument("--out", required=True)
    s.add_argument("--n", type=int, default=300, help="number of images (BUSI class mix)")
    s.add_argument("--size", type=int, default=128)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_synth)

    s = sub.add_parser("split", help="stratified 60/20/20 split keeping near-duplicates together")
    s.add_argument("--data", required=True, help="BUSI folder, split folders or HF export")
    s.add_argument("--out", required=True, help="split CSV to write")
    s.add_argument("--task", default="binary", choices=["binary", "3class", "malignant"])
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--hash-distance",
        type=int,
        default=10,
        help="max DCT-hash Hamming distance for near-duplicates (of 64 bits; 10 was checked by "
        "eye on real BUSI images)",
    )
    s.add_argument("--strict", action="store_true", help="fail on unreadable images")
    s.add_argument("--show-groups", type=int, default=5)
    s.set_defaults(func=cmd_split)

    s = sub.add_parser("train", help="train a classifier with Lightning")
    s.add_argument("--split", required=True, help="split CSV")
    s.add_argument("--out", required=True)
    s.add_argument(
        "--config", default="cnn", help="cnn | resnet18 | swin | cnn_demo | swin_demo | FILE.yaml"
    )
    s.add_argument("--model", help="any timm model name (overrides the config)")
    s.add_argument("--weights", help="local pretrained weight file")
    s.add_argument("--loss", choices=["auto", "ce", "weighted_ce", "focal"])
    s.add_argument("--sampler", choices=["none", "balanced"])
    s.add_argument("--parula", action="store_true", default=None, help="PARULA pseudocolour inputs")
    s.add_argument("--task", choices=["binary", "3class", "malignant"])
    for k, t in (
        ("epochs", int),
        ("batch-size", int),
        ("lr", float),
        ("img-size", int),
        ("seed", int),
        ("num-workers", int),
    ):
        s.add_argument(f"--{k}", type=t, dest=k.replace("-", "_"))
    s.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="other config keys (flags win)")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.add_argument("--devices", default="auto", help="devices per machine (DDP when > 1)")
    s.add_argument("--num-nodes", type=int, default=1, help="machines (Lightning DDP)")
    s.add_argument(
        "--strategy", default="auto", help="Lightning strategy (auto: ddp when > 1 device)"
    )
    s.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.ckpt")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("eval", help="test metrics with calibration, threshold, plots")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--split", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--target-sensitivity", type=float, default=0.95)
    s.add_argument("--tta", action="store_true", help="average with horizontal flip")
    s.add_argument(
        "--calibrate",
        default="temperature_bias",
        choices=["temperature_bias", "temperature"],
        help="validation-fitted calibrator (temperature + class bias, or temperature only)",
    )
    s.add_argument(
        "--decision",
        default="prevalence",
        choices=["prevalence", "argmax"],
        help="decision behind accuracy and f1_macro: call 'no lump' the validation share of "
        "lowest-scored images (prevalence), or the arg-max",
    )
    s.add_argument("--device", default="cpu")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("predict", help="classify a folder of images into a CSV")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--images", required=True, help="image file or folder")
    s.add_argument("--out", required=True, help="CSV to write")
    s.add_argument("--calibration", help="calibration.json from `eval`")
    s.add_argument("--tta", action="store_true")
    s.add_argument("--device", default="cpu")
    s.set_defaults(func=cmd_predict)

    s = sub.add_parser("gradcam", help="Grad-CAM overlays for chosen images")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--images", nargs="*", help="image files")
    s.add_argument("--split", help="take --n test images from this split CSV")
    s.add_argument("--n", type=int, default=4)
    s.add_argument("--target", default="lump", help="class to explain")
    s.set_defaults(func=cmd_gradcam)

    s = sub.add_parser("zero-shot", help="zero-shot CLIP / generative VLM from a local folder")
    s.add_argument("--model-path", required=True)
    s.add_argument("--data", required=True, help="data folder or split CSV")
    s.add_argument("--out", required=True)
    s.add_argument("--kind", default="auto", choices=["auto", "clip", "generative"])
    s.add_argument("--prompts", help="YAML with no_lump / lump prompts and a question")
    s.add_argument("--split", default="test", help="split to use when --data is a CSV")
    s.add_argument("--max-new-tokens", type=int, default=48)
    s.add_argument("--limit", type=int)
    s.add_argument("--device", default="cpu")
    s.set_defaults(func=cmd_zero_shot)

    s = sub.add_parser("tiny-vlm", help="write tiny random CLIP and LLaVA folders (for testing)")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_tiny_vlm)

    s = sub.add_parser(
        "demo", help="synth -> split -> train CNN + Swin -> eval -> Grad-CAM -> zero-shot"
    )
    s.add_argument("--out", required=True)
    s.add_argument("--n", type=int, default=300)
    s.add_argument("--epochs", type=int, default=None)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    """Console entry point: bad input exits with status 2 and one line naming the file."""
    from bus_classify.data.io import BusClassifyError

    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except (BusClassifyError, OSError, ValueError, KeyError, EOFError) as exc:
        if args.verbose:
            raise
        message = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
        if message.startswith("Caught ") and "Original Traceback" in message:
            # raised in a DataLoader worker: torch wraps the traceback; keep the original line
            message = message.strip().splitlines()[-1].split(": ", 1)[-1]
        parser.exit(2, f"{parser.prog}: error: {message}\n")


if __name__ == "__main__":
    sys.exit(main())
