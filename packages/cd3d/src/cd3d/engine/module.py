"""Lightning module: multitask training of a :class:`ChangeDetector`."""

from __future__ import annotations

import math

import lightning as L
import torch

from ..eval.metrics import ChangeMetrics
from ..models.wrapper import ChangeDetector
from .losses import ChangeLoss


class CD3DModule(L.LightningModule):
    """Trains ``ChangeDetector(**detector)`` with :class:`ChangeLoss(**loss)` and AdamW.

    Validation accumulates :class:`ChangeMetrics` over the whole split and logs ``val/f1``,
    ``val/crmse_3d_nonzero`` and the other keys, which the checkpoint callbacks monitor.
    """

    def __init__(
        self,
        detector: dict,
        loss: dict | None = None,
        optim: dict | None = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = ChangeDetector(**detector)
        self.criterion = ChangeLoss(**(loss or {}))
        self.optim_cfg = {"lr": 1e-3, "weight_decay": 1e-2, "scheduler": "cosine"} | (optim or {})
        self.channels_last = channels_last
        self.val_metrics = ChangeMetrics()

    def setup(self, stage: str) -> None:
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)

    def _inputs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        b, a = batch["before"], batch["after"]
        if self.channels_last:
            b, a = (
                b.contiguous(memory_format=torch.channels_last),
                a.contiguous(memory_format=torch.channels_last),
            )
        return b, a

    def _loss(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor | None, dict]:
        logits, h = self.model.forward_scaled(*self._inputs(batch))
        if self.model.task == "2d" or "height" not in batch:
            return logits, None, self.criterion(logits, None, batch["mask"], None)
        return (
            logits,
            h,
            self.criterion(logits, h, batch["mask"], batch["height"] / self.model.height_scale),
        )

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        _, _, parts = self._loss(batch)
        n = batch["mask"].shape[0]
        self.log("train/loss", parts["loss"], prog_bar=True, batch_size=n)
        for k, v in parts.items():
            if k != "loss":
                self.log(f"train/{k}", v, batch_size=n)
        return parts["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logits, h, parts = self._loss(batch)
        self.log("val/loss", parts["loss"], batch_size=batch["mask"].shape[0], sync_dist=True)
        if h is None:
            self.val_metrics.update(logits.argmax(1), batch["mask"])
        else:
            self.val_metrics.update(
                logits.argmax(1),
                batch["mask"],
                h.float()[:, 0] * self.model.height_scale,
                batch["height"],
            )

    def on_validation_epoch_end(self) -> None:
        res = self.val_metrics.compute()
        self.val_metrics.reset()
        for k, v in res.items():  # in 2D-only runs the 3D keys are 0 (nothing accumulated)
            self.log(f"val/{k}", v, prog_bar=k in ("f1", "crmse_3d_nonzero"))

    def configure_optimizers(self):
        c = self.optim_cfg
        opt = torch.optim.AdamW(self.parameters(), lr=c["lr"], weight_decay=c["weight_decay"])
        if c.get("scheduler") != "cosine":
            return opt
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        warm = max(1, total // 20)

        def factor(
            step: int,
        ) -> float:  # linear warm-up, then cosine decay to 1% (held after total)
            if step < warm:
                return (step + 1) / warm
            t = min((step - warm) / max(total - warm, 1), 1.0)
            return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
