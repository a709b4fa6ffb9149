"""Swin-T training throughput and peak memory (bf16 autocast, channels_last) at batch 64 and
128, and batch-1 inference latency. Meant for `--device cuda`; `--quick` / cpu use a tiny Swin.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from train_step import bare_loop

from bus_classify.models import create_model


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def train_rate(model, batch: int, img: int, device: str, steps: int, amp: bool) -> dict:
    """Training images/s (AdamW, 3 warm-up steps, the same loop as train_step.py) and peak memory."""
    x = torch.randn(batch, 3, img, img, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (batch,), device=device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    rate = bare_loop(model, x, y, steps, warmup=3, device=device, amp=amp)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    return {"img_s": round(rate, 1), "peak_mem_gib": round(peak, 2) if peak else None}


def latency_ms(model, img: int, device: str, n: int, amp: bool) -> dict:
    model.eval()
    x = torch.randn(1, 3, img, img, device=device).contiguous(memory_format=torch.channels_last)
    times = []
    for i in range(n + 5):
        _sync(device)
        t0 = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=amp):
            model(x)
        _sync(device)
        if i >= 5:
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {
        "p50_ms": round(times[len(times) // 2], 3),
        "p90_ms": round(times[int(len(times) * 0.9)], 3),
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--batches", default="64,128")
    a = p.parse_args(argv)
    if a.quick or a.device == "cpu":
        kw, img, batches, steps, n = (
            {"window_size": 4, "embed_dim": 16, "depths": (1, 1), "num_heads": (1, 2)},
            32,
            [4, 8],
            2,
            5,
        )
    else:
        kw, img, batches, steps, n = {}, 224, [int(b) for b in a.batches.split(",")], 20, 100
    amp = a.device == "cuda"
    model = create_model("swin_tiny_patch4_window7_224", 2, img, None, kw).to(a.device)
    model = model.to(memory_format=torch.channels_last)
    results: dict = {
        "model": "swin_tiny_patch4_window7_224",
        "img_size": img,
        "precision": "bf16-autocast" if amp else "fp32",
        "channels_last": True,
    }
    for b in batches:
        try:
            results[f"train_b{b}"] = train_rate(model.train(), b, img, a.device, steps, amp)
        except torch.OutOfMemoryError:
            results[f"train_b{b}"] = {"img_s": None, "oom": True}
            torch.cuda.empty_cache()
    results["infer_b1"] = latency_ms(model, img, a.device, n, amp)
    if a.device == "cuda":
        results["gpu"] = torch.cuda.get_device_name()
    res = {
        "benchmark": "gpu_swin",
        "package": "bus_classify",
        "device": a.device,
        "results": results,
    }
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
