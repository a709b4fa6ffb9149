"""Accuracy table on the synthetic benchmark (fixed seed and budget): siam_unet and the
MTBIT-like model vs two trivial baselines (always no-change; colour-difference threshold with a
constant height). Prints a markdown table on stderr and one JSON object on stdout."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit

from cd3d.data.dataset import ChangeDataset
from cd3d.data.synth import synth_dataset
from cd3d.engine.checkpoint import load_detector
from cd3d.engine.config import load_config
from cd3d.engine.train import train
from cd3d.eval.baselines import ColourDiff, NoChange
from cd3d.eval.evaluate import evaluate

MODELS = {
    "siam_unet": {
        "name": "siam_unet",
        "kwargs": {
            "encoder_name": "tu-mobilenetv3_small_100",
            "decoder_channels": [64, 32, 16, 16, 8],
        },
    },
    "mtbit": {
        "name": "mtbit",
        "kwargs": {
            "encoder_name": "tu-mobilenetv3_small_100",
            "encoder_depth": 3,
            "dim": 32,
            "heads": 4,
            "decoder_channels": [32, 16, 8],
        },
    },
}
KEYS = ("f1", "iou", "precision", "recall", "rmse", "mae", "crmse_3d_nonzero", "crmse_2d_label")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=None)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--train-tiles", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--models", default="siam_unet,mtbit", help="comma-separated subset of " + ",".join(MODELS)
    )
    p.add_argument(
        "--lambdas",
        default="",
        help="comma-separated lambda_3d values to sweep (default: the config's)",
    )
    a = p.parse_args(argv)
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="cd3d_acc_"))
    n = (6, 2, 3) if a.quick else (a.train_tiles, 8, 16)
    root = synth_dataset(out / "data", a.seed, *n, tile=64 if a.quick else 128)
    rows: dict[str, dict] = {}
    secs: dict[str, float] = {}
    lambdas = [float(v) for v in a.lambdas.split(",")] if a.lambdas else [None]
    runs = [(m, lam) for m in a.models.split(",") for lam in lambdas]
    for model, lam in runs:
        name = model if lam is None else f"{model}_lambda{lam:g}"
        t = time.perf_counter()
        sets = [
            f"data.root={root}",
            f"out={out / name}",
            f"seed={a.seed}",
            f"trainer.max_epochs={1 if a.quick else a.epochs}",
            f"trainer.accelerator={'gpu' if a.device == 'cuda' else 'cpu'}",
        ]
        cfg = load_config(
            "demo.yaml", sets + ([f"loss.lambda_3d={lam}"] if lam is not None else [])
        )
        cfg["model"].update(MODELS[model])
        cfg["trainer"]["enable_progress_bar"] = False
        res = train(cfg, resume=None)
        rows[name] = evaluate(
            load_detector(res["best_f1"]), root, "test", out / name / "eval", device=a.device
        )
        secs[name] = round(time.perf_counter() - t, 1)
    rows["no_change"] = evaluate(NoChange(), root, "test")
    rows["colour_diff"] = evaluate(ColourDiff.fit(ChangeDataset(root, "train")), root, "test")
    table = ["| model | " + " | ".join(KEYS) + " |", "|---" * (len(KEYS) + 1) + "|"]
    for k, r in rows.items():
        table.append(f"| {k} | " + " | ".join(f"{r[m]:.3f}" for m in KEYS) + " |")
    print("\n".join(table), file=sys.stderr)
    results = {f"{k}_{m}": round(r[m], 4) for k, r in rows.items() for m in KEYS}
    best_base = max(rows["no_change"]["f1"], rows["colour_diff"]["f1"])
    learned = [rows[k]["f1"] for k in secs]
    results["ratio"] = round(min(learned) / max(best_base, 1e-9), 3)
    results["ratio_meaning"] = "worst learned-model F1 / best baseline F1"
    results["train_seconds"] = secs
    results["epochs"] = 1 if a.quick else a.epochs
    results["train_tiles"] = n[0]
    emit({"benchmark": "accuracy", "package": "cd3d", "device": a.device, "results": results})


if __name__ == "__main__":
    main()
