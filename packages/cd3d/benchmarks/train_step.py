"""Training step time (forward + backward + AdamW) on 400² tile pairs.

CUDA: fp32 vs bf16 autocast + channels_last, side by side. CPU: fp32 vs channels_last.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit, model_kwargs, model_parser, rss_mib, timed

from cd3d.engine.losses import ChangeLoss
from cd3d.models import ChangeDetector


def main(argv: list[str] | None = None) -> None:
    p = model_parser(__doc__)
    p.add_argument("--batch-size", type=int, default=None)
    a = p.parse_args(argv)
    dev = torch.device(a.device)
    torch.manual_seed(0)
    size = 64 if a.quick else 400
    bs = a.batch_size or (2 if a.quick else (2 if a.device == "cpu" else 16))
    iters = 2 if a.quick else (3 if a.device == "cpu" else 20)
    kw = model_kwargs(a)
    crit = ChangeLoss().to(dev)
    x = torch.rand(bs, 3, size, size, device=dev)
    y = torch.rand(bs, 3, size, size, device=dev)
    mask = (torch.rand(bs, size, size, device=dev) > 0.9).long()
    h = torch.randn(bs, size // 2, size // 2, device=dev) * 0.1
    variants = (
        {"fp32": (False, False), "bf16_cl": (True, True)}
        if a.device == "cuda"
        else {"fp32": (False, False), "channels_last": (False, True)}
    )
    res: dict = {"tile": size, "batch": bs, "model": a.model, "encoder": a.encoder}
    for name, (amp, cl) in variants.items():
        torch.manual_seed(0)
        det = ChangeDetector(a.model, kw).to(dev).train()
        fmt = torch.channels_last if cl else torch.contiguous_format
        det = det.to(memory_format=fmt)
        xi, yi = x.contiguous(memory_format=fmt), y.contiguous(memory_format=fmt)
        opt = torch.optim.AdamW(det.parameters(), lr=1e-4)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)

        def step(det=det, opt=opt, xi=xi, yi=yi, amp=amp):
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                logits, hh = det.forward_scaled(xi, yi)
            loss = crit(logits, hh, mask, h)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        sec = timed(step, dev, 1, iters)
        res[f"{name}_step_s"] = round(sec, 4)
        res[f"{name}_tiles_per_s"] = round(bs / sec, 3)
        res[f"{name}_peak_mib"] = round(
            torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else rss_mib(), 1
        )
    base, other = list(variants)
    res["ratio"] = round(res[f"{base}_step_s"] / res[f"{other}_step_s"], 3)
    res["ratio_meaning"] = f"speed-up of {other} over {base} (step time {base} / {other})"
    emit({"benchmark": "train_step", "package": "cd3d", "device": a.device, "results": res})


if __name__ == "__main__":
    main()
