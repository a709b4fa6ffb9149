"""Helpers shared by the benchmark scripts (timing, memory, JSON line)."""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rss_mib() -> float:
    """Peak resident set size of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(fn, device: torch.device, warmup: int, iters: int) -> float:
    """Median seconds per call of ``fn`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    ts = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        sync(device)
        ts.append(time.perf_counter() - t)
    ts.sort()
    return ts[len(ts) // 2]


def emit(obj: dict) -> None:
    print(json.dumps(obj), flush=True)
    sys.stdout.flush()


def model_parser(doc: str | None = None) -> argparse.ArgumentParser:
    """Arguments shared by the model benchmarks (device, quick mode, model and encoder)."""
    p = argparse.ArgumentParser(description=doc)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--model", default="siam_unet")
    p.add_argument("--encoder", default="resnet18")
    return p


def model_kwargs(a: argparse.Namespace) -> dict:
    """Network kwargs for ``ChangeDetector``; ``--quick`` shrinks the encoder and decoder."""
    kw = {"encoder_name": a.encoder}
    if a.quick:
        kw |= {"encoder_depth": 3, "decoder_channels": [16, 8, 8]}
    return kw
