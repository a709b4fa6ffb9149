"""Data-loader throughput (decode + train augmentations) vs the model's consumption rate.

Writes synthetic BUSI-layout PNGs, then measures images/s of the package's training
DataLoader and images/s of one training step of the model on the same device. `ratio > 1`
means the loader keeps up with the model.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch
from torch.utils.data import DataLoader

from bus_classify.data.dataset import BusDataset
from bus_classify.data.sources import discover
from bus_classify.data.synth import write_synthetic
from bus_classify.data.transforms import build_transform
from bus_classify.models import create_model


def main(argv=None) -> dict:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args(argv)
    n, src, img, batch = (24, 96, 32, 8) if a.quick else (96, 500, 224, 16)
    name = "bus_cnn_small" if a.device == "cpu" else "swin_tiny_patch4_window7_224"
    with tempfile.TemporaryDirectory() as d:
        write_synthetic(d, n=n, size=src, seed=0, n_duplicates=0)
        rows = [{"path": s.ref, "label": s.label} for s in discover(d)]
        ds = BusDataset(rows, build_transform(img, train=True))
        loader = DataLoader(
            ds, batch_size=batch, shuffle=True, num_workers=a.workers, persistent_workers=False
        )
        t0 = time.perf_counter()
        seen = sum(len(x) for x, _ in loader)
        load_s = seen / (time.perf_counter() - t0)
    model = create_model(name, 2, img).to(a.device).train()
    opt = torch.optim.AdamW(model.parameters())
    x = torch.randn(batch, 3, img, img, device=a.device)
    y = torch.randint(0, 2, (batch,), device=a.device)
    steps = 2 if a.quick else 5
    for i in range(steps + 1):
        if i == 1:
            if a.device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        with torch.autocast(a.device, dtype=torch.bfloat16, enabled=a.device == "cuda"):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if a.device == "cuda":
        torch.cuda.synchronize()
    model_s = steps * batch / (time.perf_counter() - t0)
    res = {
        "benchmark": "dataloader",
        "package": "bus_classify",
        "device": a.device,
        "results": {
            "model": name,
            "img_size": img,
            "source_px": src,
            "workers": a.workers,
            "loader_img_s": round(load_s, 2),
            "model_img_s": round(model_s, 2),
            "ratio": round(load_s / model_s, 3),
        },
    }
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
