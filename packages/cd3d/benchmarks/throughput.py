"""Inference throughput (tile pairs/s) and peak memory for 400² pairs at several batch sizes.

On CUDA, fp32 is compared side by side with bf16 autocast + channels_last; on CPU, fp32
contiguous is compared with channels_last. Imports only torch, smp/timm and cd3d (no rasterio).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit, model_kwargs, model_parser, rss_mib, timed

from cd3d.models import ChangeDetector


def main(argv: list[str] | None = None) -> None:
    p = model_parser(__doc__)
    a = p.parse_args(argv)
    dev = torch.device(a.device)
    torch.manual_seed(0)
    size = 64 if a.quick else 400
    batches = [1, 2] if a.quick else ([1, 4, 8] if a.device == "cpu" else [1, 8, 32, 64])
    iters = 2 if a.quick else (3 if a.device == "cpu" else 20)
    kw = model_kwargs(a)
    det = ChangeDetector(a.model, kw).to(dev).eval()
    variants = (
        {"fp32": (False, False), "bf16_cl": (True, True)}
        if a.device == "cuda"
        else {"fp32": (False, False), "channels_last": (False, True)}
    )
    results: dict = {"tile": size, "model": a.model, "encoder": a.encoder}
    for name, (amp, cl) in variants.items():
        m = det.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
        for bs in batches:
            x = torch.rand(bs, 3, size, size, device=dev)
            y = torch.rand(bs, 3, size, size, device=dev)
            if cl:
                x, y = (
                    x.contiguous(memory_format=torch.channels_last),
                    y.contiguous(memory_format=torch.channels_last),
                )
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats(dev)

            @torch.no_grad()
            def step(m=m, x=x, y=y, amp=amp):
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                    m(x, y)

            sec = timed(step, dev, 1, iters)
            mem = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else rss_mib()
            results[f"{name}_bs{bs}_tiles_per_s"] = round(bs / sec, 3)
            results[f"{name}_bs{bs}_peak_mib"] = round(mem, 1)
    base, other = list(variants)
    bs = batches[-1]
    results["ratio"] = round(
        results[f"{other}_bs{bs}_tiles_per_s"] / results[f"{base}_bs{bs}_tiles_per_s"], 3
    )
    results["ratio_meaning"] = f"{other} / {base} tiles/s at batch {bs}"
    emit({"benchmark": "throughput", "package": "cd3d", "device": a.device, "results": results})


if __name__ == "__main__":
    main()
