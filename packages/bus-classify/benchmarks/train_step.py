"""Training throughput: the package's Lightning training step vs a bare timm loop.

Same model, batch, optimizer and loss; the package path runs `BusClassifier` inside a
Lightning `Trainer` (no validation, logging or checkpoints). Both loops read the same batch,
already on the device, so the ratio measures the training step and not host-to-device copies
(which a bare loop holding one tensor on the GPU would otherwise skip). Prints one JSON line; the goal is
`ratio = package_img_s / bare_img_s >= 0.9`.
"""

from __future__ import annotations

import argparse
import json
import time

import lightning as L
import torch
from torch.utils.data import DataLoader

from bus_classify.engine.module import BusClassifier
from bus_classify.models import create_model


class _Timer(L.Callback):
    """Times the training steps after `warmup`, excluding Trainer set-up and teardown."""

    def __init__(self, warmup: int, total: int) -> None:
        self.warmup, self.total, self.t0, self.t1 = warmup, total, None, None

    @staticmethod
    def _now() -> float:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.warmup:
            self.t0 = self._now()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx == self.total - 1:
            self.t1 = self._now()


def bare_loop(model, x, y, steps: int, warmup: int, device: str, amp: bool) -> float:
    model = model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x, y = x.to(device), y.to(device)
    t0 = None
    for i in range(steps + warmup):
        if i == warmup:
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=amp):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * len(x) / (time.perf_counter() - t0)


def package_loop(name, kwargs, img, x, y, steps, warmup, device, amp) -> float:
    module = BusClassifier(
        model=name, num_classes=2, img_size=img, model_kwargs=kwargs, lr=1e-4, loss="ce"
    )
    # One pre-made batch per step (batch_size=None: no per-sample collate), already on device.
    batch = (x.to(device), y.to(device))
    loader = DataLoader([batch] * (steps + warmup), batch_size=None, shuffle=False)
    timer = _Timer(warmup, steps + warmup)
    trainer = L.Trainer(
        accelerator=device,
        devices=1,
        max_steps=steps + warmup,
        precision="bf16-mixed" if amp else "32-true",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
        limit_val_batches=0,
    )
    trainer.fit(module, train_dataloaders=loader)
    return steps * len(x) / (timer.t1 - timer.t0)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--model", default=None)
    a = p.parse_args(argv)
    if a.device == "cuda":
        name, kwargs, img, batch, steps, amp = "swin_tiny_patch4_window7_224", {}, 224, 64, 60, True
    else:
        name, kwargs, img, batch, steps, amp = "bus_cnn_small", {}, 64, 32, 15, False
    if a.model:
        name = a.model
    if a.quick:
        img, batch, steps = 32, 8, 3
    torch.manual_seed(0)
    x, y = torch.randn(batch, 3, img, img), torch.randint(0, 2, (batch,))
    warmup = 5 if a.device == "cuda" else 2
    bare = bare_loop(create_model(name, 2, img, None, kwargs), x, y, steps, warmup, a.device, amp)
    pkg = package_loop(name, kwargs, img, x, y, steps, warmup, a.device, amp)
    res = {
        "benchmark": "train_step",
        "package": "bus_classify",
        "device": a.device,
        "results": {
            "model": name,
            "img_size": img,
            "batch": batch,
            "steps": steps,
            "bare_img_s": round(bare, 2),
            "package_img_s": round(pkg, 2),
            "ratio": round(pkg / bare, 3),
            "goal_ratio": 0.9,
        },
    }
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
