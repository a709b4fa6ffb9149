"""Embedding extraction throughput (img/s) of `extract` from image files, and the bare
network forward pass on pre-loaded tensors, side by side (CPU or CUDA)."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from spheroid_rank.data.io import save_gray
from spheroid_rank.engine.config import SSLConfig
from spheroid_rank.engine.embed import extract
from spheroid_rank.models.ssl import build_method


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--img-size", type=int, default=None)
    args = ap.parse_args(argv)
    n = 16 if args.quick else (128 if args.device == "cpu" else 2048)
    size = args.img_size or (32 if args.quick else (64 if args.device == "cpu" else 224))
    bs = 16 if args.quick else (64 if args.device == "cpu" else 256)
    if args.device == "cpu":
        torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(n):
            p = Path(tmp) / f"{i}.png"
            save_gray(p, rng.random((size + size // 8, size + size // 8)))
            paths.append(str(p))
        table = pd.DataFrame({"path": paths})
        cfg = SSLConfig(backbone=args.backbone, img_size=size, load_size=size + size // 8)
        model = build_method("simclr", backbone=args.backbone, in_chans=1, img_size=size).eval()
        extract(model, table.iloc[:bs], cfg, device=args.device, batch_size=bs)  # warm-up
        t0 = time.perf_counter()
        emb = extract(
            model,
            table,
            cfg,
            device=args.device,
            batch_size=bs,
            workers=0 if args.device == "cpu" else 8,
        )
        files_s = n / (time.perf_counter() - t0)
        x = torch.rand(bs, 1, size, size, device=args.device)
        with torch.no_grad():
            model.embed(x)
            if args.device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(max(n // bs, 1)):
                model.embed(x)
            if args.device == "cuda":
                torch.cuda.synchronize()
        fwd_s = bs * max(n // bs, 1) / (time.perf_counter() - t0)
    print(
        json.dumps(
            {
                "benchmark": "embed_throughput",
                "package": "spheroid-rank",
                "device": args.device,
                "results": {
                    "backbone": args.backbone,
                    "img_size": size,
                    "images": n,
                    "dim": int(emb.shape[1]),
                    "extract_from_files_img_s": round(files_s, 1),
                    "forward_only_img_s": round(fwd_s, 1),
                    "ratio": round(files_s / fwd_s, 3),
                },
            }
        )
    )


if __name__ == "__main__":
    main()
