"""Lightning module wrapping any timm classifier."""

from __future__ import annotations

import lightning as L
import torch
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from bus_classify.data.io import BusClassifyError
from bus_classify.engine.losses import build_loss
from bus_classify.models.factory import create_model


class BusClassifier(L.LightningModule):
    """Image classifier trained with AdamW (optional cosine schedule) and CE / weighted CE / focal loss."""

    def __init__(
        self,
        *,
        model: str,
        num_classes: int = 2,
        img_size: int = 224,
        model_kwargs: dict | None = None,
        weights: str | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        loss: str = "ce",
        class_weights: list | None = None,
        focal_gamma: float = 2.0,
        class_names: list | None = None,
        parula: bool = False,
        epochs: int = 20,
        scheduler: str = "none",
        channels_last: bool = False,
    ) -> None:
        """Keyword-only; the names are the run-config keys, so ``BusClassifier(**kwargs_for(
        BusClassifier, cfg), num_classes=..., ...)`` builds it from a config."""
        super().__init__()
        self.save_hyperparameters()
        self.model = create_model(model, num_classes, img_size, weights, model_kwargs)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.criterion = build_loss(loss, class_weights if loss != "ce" else None, focal_gamma)
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_f1 = MulticlassF1Score(num_classes, average="macro")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.criterion(self(x), y)
        self.log(
            "train_loss",
            loss,
            prog_bar=True,
            on_step=False,
            on_epoch=True,
            batch_size=len(y),
            sync_dist=True,
        )
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        self.val_acc.update(logits, y)
        self.val_f1.update(logits, y)
        self.log("val_loss", loss, prog_bar=True, on_epoch=True, batch_size=len(y), sync_dist=True)
        self.log("val_acc", self.val_acc, prog_bar=True, on_epoch=True)
        self.log("val_f1", self.val_f1, prog_bar=True, on_epoch=True)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(
            self.model.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )
        if self.hparams.scheduler == "none":
            return opt
        if self.hparams.scheduler != "cosine":
            raise BusClassifyError(
                f"unknown scheduler {self.hparams.scheduler!r}; use none or cosine"
            )
        epochs = max(1, int(self.hparams.epochs))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
