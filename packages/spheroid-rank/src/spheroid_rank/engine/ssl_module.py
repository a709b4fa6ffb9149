"""Lightning module training any registered SSL method."""

from __future__ import annotations

import lightning as L
import torch

from spheroid_rank.models.ssl import build_method, warmup_cosine


class SSLModule(L.LightningModule):
    """Wraps an :class:`~spheroid_rank.models.ssl.SSLMethod` for Lightning training."""

    def __init__(
        self,
        method: str = "simclr",
        backbone: str = "resnet18",
        in_chans: int = 1,
        img_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        warmup_epochs: int = 1,
        **method_kwargs,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = build_method(
            method, backbone=backbone, in_chans=in_chans, img_size=img_size, **method_kwargs
        )
        self.epoch_stats: list[dict] = []  # per epoch, gathered over all processes
        self.rank_spread: dict[str, float] = {}
        self._seen: list[torch.Tensor] = []
        self._losses: list[torch.Tensor] = []

    def training_step(self, batch, batch_idx):
        views, index = batch
        loss = self.model.loss(list(views), self.current_epoch, self.trainer.max_epochs or 1)
        self.log(
            "train_loss",
            loss,
            prog_bar=True,
            on_step=True,
            on_epoch=True,
            sync_dist=True,  # the logged value is the mean over processes
            batch_size=views[0].shape[0],
        )
        self._seen.append(index.detach())
        self._losses.append(loss.detach())
        return loss

    def on_train_epoch_end(self) -> None:
        """Record which samples every process saw and the mean loss over all of them."""
        seen = self.all_gather(torch.cat(self._seen)).reshape(-1)
        losses = self.all_gather(torch.stack(self._losses)).reshape(-1).float()
        self.epoch_stats.append(
            {
                "epoch": int(self.current_epoch),
                "samples": int(seen.numel()),
                "unique_samples": int(seen.unique().numel()),
                "loss": float(losses.mean()),
            }
        )
        self._seen, self._losses = [], []

    def on_train_end(self) -> None:
        """Largest difference across processes of the trainable weights and of the
        momentum/teacher copies (0 when every process holds the same model)."""
        for name, trainable in (("trainable", True), ("momentum_or_teacher", False)):
            ps = [
                p.detach().reshape(-1)
                for p in self.model.parameters()
                if p.requires_grad == trainable
            ]
            if not ps:
                continue
            flat = torch.cat(ps).float()
            every = self.all_gather(flat).reshape(-1, flat.numel())
            self.rank_spread[name] = float((every - every[0]).abs().max())

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        self.model.after_step(self.global_step, int(self.trainer.estimated_stepping_batches))

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        per_epoch = max(total // max(self.trainer.max_epochs or 1, 1), 1)
        warm = self.hparams.warmup_epochs * per_epoch
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, total, warm))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
