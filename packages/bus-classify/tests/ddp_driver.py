"""Run the package's `train()` as one rank of a Lightning DDP job and record what this rank
did (the ddp test launches it; Lightning re-launches it for rank 1).

Records, per rank, in ``--record``: every file this process opened for writing (or renamed)
under ``--out``, the training-sample indices its sampler yielded per epoch, and on rank 0 the
validation metrics of the last epoch.
"""

from __future__ import annotations

import argparse
import builtins
import json
import os
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

from bus_classify.engine.config import load_config
from bus_classify.engine.train import train


class Record(Callback):
    def __init__(self) -> None:
        self.epochs: list[list[int]] = []
        self.sampler = ""

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        sampler = trainer.train_dataloader.sampler
        self.sampler = type(sampler).__name__
        self.epochs.append([int(i) for i in iter(sampler)])

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--split", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--record", required=True)
    p.add_argument("--devices", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=4)
    args = p.parse_args()
    torch.set_num_threads(1)
    rank = int(os.environ.get("LOCAL_RANK", "0"))
    out = str(Path(args.out).resolve())
    writes: list[str] = []
    real_open, real_replace = builtins.open, os.replace

    def spy_open(file, mode="r", *a, **k):
        if isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+"):
            if str(Path(file).resolve()).startswith(out):
                writes.append(str(Path(file).resolve()))
        return real_open(file, mode, *a, **k)

    def spy_replace(src, dst, *a, **k):
        if str(Path(dst).resolve()).startswith(out):
            writes.append("replace " + str(Path(dst).resolve()))
        return real_replace(src, dst, *a, **k)

    builtins.open, os.replace = spy_open, spy_replace
    cfg = load_config(
        "cnn",
        {
            "img_size": 32,
            "epochs": 2,
            "batch_size": args.batch_size,
            "num_workers": 0,
            "augment": "none",
            "loss": "ce",
            "scheduler": "none",
            "model_kwargs": {"drop_rate": 0.0},
            "cache_images": True,
        },
    )
    rec = Record()
    train(
        cfg,
        args.split,
        args.out,
        device="cpu",
        devices=args.devices,
        strategy="ddp",
        progress=False,
        extra_callbacks=[rec],
    )
    builtins.open, os.replace = real_open, real_replace
    result = {
        "rank": rank,
        "writes": writes,
        "epochs": rec.epochs,
        "sampler": rec.sampler,
        "metrics": getattr(rec, "metrics", {}),
    }
    Path(args.record).mkdir(parents=True, exist_ok=True)
    (Path(args.record) / f"rank{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
