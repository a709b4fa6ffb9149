"""SSL training throughput: spheroid-rank's Lightning SimCLR module vs a bare lightly loop.

Both use the same backbone, batch size, images, augmentations and DataLoader; the ratio
ours/bare is the overhead of Lightning + the method registry (goal >= 0.9).
"""

from __future__ import annotations

import argparse
import json
import time

import lightning as L
import torch
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead
from torch.utils.data import DataLoader, Dataset

from spheroid_rank.data.transforms import ssl_transform
from spheroid_rank.engine.ssl_module import SSLModule
from spheroid_rank.models.backbones import create_backbone


class Images(Dataset):
    def __init__(self, n: int, size: int, transform) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(n, 1, size, size, generator=g)
        self.t = transform

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return self.t(self.x[i]), i


def bare_loop(dl, backbone_name: str, device: str, steps: int, amp: bool) -> float:
    torch.manual_seed(0)
    backbone = create_backbone(backbone_name, 1).to(device)
    head = SimCLRProjectionHead(backbone.num_features, 512, 128).to(device)
    crit = NTXentLoss(temperature=0.2)
    opt = torch.optim.AdamW(list(backbone.parameters()) + list(head.parameters()), lr=1e-3)
    n, t0, done = 0, None, 0
    while done < steps + 2:
        for (x0, x1), _ in dl:
            if done == 2:  # two warm-up steps
                if device == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            x0, x1 = x0.to(device), x1.to(device)
            with torch.autocast(device, enabled=amp, dtype=torch.float16 if amp else None):
                loss = crit(head(backbone(x0)), head(backbone(x1)))
            opt.zero_grad()
            loss.backward()
            opt.step()
            if done >= 2:
                n += x0.shape[0]
            done += 1
            if done >= steps + 2:
                break
    if device == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


class _Timer(L.Callback):
    def __init__(self, warm: int = 2) -> None:
        self.warm, self.n, self.t0 = warm, 0, None

    def on_train_batch_start(self, trainer, module, batch, idx):
        if trainer.global_step == self.warm and self.t0 is None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, idx):
        if self.t0 is not None:
            self.n += batch[0][0].shape[0]

    def on_train_end(self, trainer, module):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.t1 = time.perf_counter()


def ours(dl, backbone_name: str, device: str, steps: int, amp: bool) -> float:
    torch.manual_seed(0)
    module = SSLModule("simclr", backbone_name, 1, 64, lr=1e-3)
    timer = _Timer()
    trainer = L.Trainer(
        max_steps=steps + 2,
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        precision="16-mixed" if amp else "32-true",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(module, dl)
    return timer.n / (timer.t1 - timer.t0)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--backbone", default=None)
    args = ap.parse_args(argv)
    quick = args.quick
    backbone = args.backbone or (
        "spheroid_cnn_small" if quick or args.device == "cpu" else "resnet18"
    )
    size, batch = (32, 8) if quick else (64, 32 if args.device == "cpu" else 256)
    steps = 3 if quick else (10 if args.device == "cpu" else 40)
    amp = args.device == "cuda"
    if args.device == "cpu":
        torch.set_num_threads(1)
    ds = Images(batch * 4, size + 8, ssl_transform(size, 1))
    dl = DataLoader(
        ds,
        batch_size=batch,
        shuffle=True,
        drop_last=True,
        num_workers=0 if args.device == "cpu" else 4,
    )
    # interleave the two variants twice and keep the best of each (noisy shared machines)
    b1 = bare_loop(dl, backbone, args.device, steps, amp)
    o1 = ours(dl, backbone, args.device, steps, amp)
    b2 = bare_loop(dl, backbone, args.device, steps, amp)
    o2 = ours(dl, backbone, args.device, steps, amp)
    bare, our = max(b1, b2), max(o1, o2)
    print(
        json.dumps(
            {
                "benchmark": "ssl_train",
                "package": "spheroid-rank",
                "device": args.device,
                "results": {
                    "backbone": backbone,
                    "batch": batch,
                    "img_size": size,
                    "ours_img_s": round(our, 2),
                    "bare_lightly_img_s": round(bare, 2),
                    "ratio": round(our / bare, 3),
                    "goal_ratio": 0.9,
                },
            }
        )
    )


if __name__ == "__main__":
    main()
