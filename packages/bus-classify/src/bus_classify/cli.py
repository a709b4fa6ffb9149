"""`bus-classify` command line: synth | split | train | eval | predict | gradcam | zero-shot | demo."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger("bus_classify")


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(show_path=False, show_time=False)], force=True)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).propagate = False


def cmd_synth(a) -> int:
    from bus_classify.data.synth import write_synthetic

    counts = write_synthetic(a.out, n=a.n, size=a.size, seed=a.seed)
    print(json.dumps(counts))
    return 0


def cmd_split(a) -> int:
    from bus_classify.data.sources import discover
    from bus_classify.data.split import make_split, write_csv

    rows, report = make_split(discover(a.data, a.task), seed=a.seed,
                              max_distance=a.hash_distance, strict=a.strict)
    write_csv(rows, a.out)
    print(report.summary())
    for g in report.duplicate_groups[: a.show_groups]:
        print("  duplicate group: " + " | ".join(Path(p).name for p in g))
    print(f"wrote {a.out} ({len(rows)} images)")
    return 0


def cmd_train(a) -> int:
    from bus_classify.configs import load_config
    from bus_classify.engine.train import train

    overrides = list(a.set or [])
    for key in ("loss", "sampler", "epochs", "batch_size", "lr", "img_size", "seed", "weights",
                "model", "num_workers"):
        v = getattr(a, key)
        if v is not None:
            overrides.append(f"{key}={v}")
    if a.parula:
        overrides.append("parula=true")
    if a.task:
        overrides.append(f"task={a.task}")
    cfg = load_config(a.config, overrides)
    best = train(cfg, a.split, a.out, device=a.device, devices=a.devices, resume=a.resume,
                 progress=not a.no_progress)
    print(f"best checkpoint: {best}")
    return 0


def cmd_eval(a) -> int:
    from bus_classify.eval.evaluate import evaluate

    m = evaluate(a.checkpoint, a.split, a.out, a.target_sensitivity, a.tta, a.device)
    print(json.dumps({k: m[k] for k in m if k != "details"}, indent=2))
    print(f"wrote {Path(a.out) / 'metrics.json'}, plots and summary.md")
    return 0


def cmd_predict(a) -> int:
    from bus_classify.eval.predict import predict_folder

    rows = predict_folder(a.checkpoint, a.images, a.out, a.calibration, a.tta, a.device)
    for r in rows[:10]:
        print(f"{Path(r['file']).name:32s} p={r['prob_lump']} p_cal={r['prob_lump_calibrated']} "
              f"{r['label']}")
    print(f"wrote {a.out} ({len(rows)} images)")
    return 0


def cmd_gradcam(a) -> int:
    from bus_classify.data.split import read_csv
    from bus_classify.eval.gradcam import gradcam_overlays

    refs = list(a.images or [])
    if a.split:
        rows = [r for r in read_csv(a.split) if r["split"] == "test"]
        refs += [r["path"] for r in rows[:: max(1, len(rows) // a.n)][: a.n]]
    if not refs:
        raise SystemExit("gradcam: give --images FILE... or --split CSV")
    for p in gradcam_overlays(a.checkpoint, refs, a.out, a.target):
        print(p)
    return 0


def cmd_zero_shot(a) -> int:
    from bus_classify.eval.zeroshot import zero_shot

    m = zero_shot(a.model_path, a.data, a.out, a.kind, a.prompts, a.split, a.device,
                  a.max_new_tokens, a.limit)
    d = m.get("details", {})
    print(json.dumps({**{k: m[k] for k in m if k != "details"},
                      **{k: d[k] for k in ("unparsed", "coverage") if k in d}}, indent=2))
    return 0


def cmd_tiny_vlm(a) -> int:
    from bus_classify.models.tiny_vlm import build_tiny_clip, build_tiny_llava

    out = Path(a.out)
    print(build_tiny_clip(out / "tiny-clip"))
    print(build_tiny_llava(out / "tiny-llava"))
    return 0


def cmd_demo(a) -> int:
    from bus_classify.demo import run_demo

    summary = run_demo(a.out, n=a.n, seed=a.seed, epochs=a.epochs, threads=a.threads)
    print(json.dumps(summary, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bus-classify", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true")
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
    s.add_argument("--task", default="binary", choices=["binary", "3class"])
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--hash-distance", type=int, default=6,
                   help="max perceptual-hash Hamming distance for near-duplicates (of 64 bits)")
    s.add_argument("--strict", action="store_true", help="fail on unreadable images")
    s.add_argument("--show-groups", type=int, default=5)
    s.set_defaults(func=cmd_split)

    s = sub.add_parser("train", help="train a classifier with Lightning")
    s.add_argument("--split", required=True, help="split CSV")
    s.add_argument("--out", required=True)
    s.add_argument("--config", default="cnn", help="cnn | swin | cnn_demo | swin_demo | FILE.yaml")
    s.add_argument("--model", help="any timm model name (overrides the config)")
    s.add_argument("--weights", help="local pretrained weight file")
    s.add_argument("--loss", choices=["ce", "weighted_ce", "focal"])
    s.add_argument("--sampler", choices=["none", "balanced"])
    s.add_argument("--parula", action="store_true", help="PARULA pseudocolour inputs")
    s.add_argument("--task", choices=["binary", "3class"])
    for k, t in (("epochs", int), ("batch-size", int), ("lr", float), ("img-size", int),
                 ("seed", int), ("num-workers", int)):
        s.add_argument(f"--{k}", type=t, dest=k.replace("-", "_"))
    s.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="other config overrides")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.add_argument("--devices", default="auto", help="number of devices (DDP when > 1)")
    s.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.ckpt")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("eval", help="test metrics with calibration, threshold, plots")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--split", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--target-sensitivity", type=float, default=0.95)
    s.add_argument("--tta", action="store_true", help="average with horizontal flip")
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

    s = sub.add_parser("demo", help="synth -> split -> train CNN + Swin -> eval -> Grad-CAM -> zero-shot")
    s.add_argument("--out", required=True)
    s.add_argument("--n", type=int, default=300)
    s.add_argument("--epochs", type=int, default=None)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    """Console entry point."""
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as e:
        log.error("%s", e)
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
