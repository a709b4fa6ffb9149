"""Lightning module wrapping any timm classifier."""

from __future__ import annotations

import lightning as L
import torch
from torchmetrics.classification import BinaryAUROC, MulticlassAccuracy, MulticlassF1Score

from bus_classify.data.io import BusClassifyError
from bus_classify.data.sources import positive_classes
from bus_classify.engine.losses import build_loss
from bus_classify.models.factory import create_model

SCHEDULERS = ("none", "cosine", "onecycle")


class LesionHead(torch.nn.Module):
    """1x1 convolution from the backbone's last feature map to one lesion logit per cell.

    :meth:`loss` is the binary cross-entropy against the share of lesion pixels in each cell
    (the mask average-pooled to the map's size), averaged over the images that have a mask.
    """

    def __init__(self, model: torch.nn.Module, img_size: int) -> None:
        super().__init__()
        self.nhwc = getattr(model, "output_fmt", "NCHW") == "NHWC"  # timm's Swin
        was_training = model.training
        with torch.no_grad():
            feats = model.eval().forward_features(torch.zeros(1, 3, img_size, img_size))
        model.train(was_training)
        if feats.ndim != 4:
            raise BusClassifyError(
                f"seg_aux needs a backbone with a 2-D feature map; {type(model).__name__} "
                f"gives shape {tuple(feats.shape)}"
            )
        with torch.random.fork_rng(devices=[]):  # leave the training run's random stream as it is
            self.conv = torch.nn.Conv2d(feats.shape[-1] if self.nhwc else feats.shape[1], 1, 1)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.conv(feats.permute(0, 3, 1, 2) if self.nhwc else feats)

    def loss(self, feats: torch.Tensor, mask: torch.Tensor, has_mask: torch.Tensor) -> torch.Tensor:
        logits = self(feats).float()
        target = torch.nn.functional.adaptive_avg_pool2d(mask.float(), logits.shape[-2:])
        per_image = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, target, reduction="none"
        ).mean(dim=(1, 2, 3))
        weight = has_mask.float()
        return (per_image * weight).sum() / weight.sum().clamp(min=1.0)


class BusClassifier(L.LightningModule):
    """Image classifier: AdamW with a one-cycle / cosine / constant learning rate, CE /
    class-weighted CE / focal loss, plus ``seg_aux`` x the :class:`LesionHead` loss when the
    batches carry masks; validation logs loss, accuracy, macro F1 and ROC-AUC of the lump
    (positive-group) score."""

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
        label_smoothing: float = 0.0,
        mixup: float = 0.0,
        class_names: list | None = None,
        parula: bool = False,
        epochs: int = 20,
        scheduler: str = "none",
        channels_last: bool = False,
        resize: str = "stretch",
        task: str = "binary",
        seg_aux: float = 0.0,
    ) -> None:
        """Keyword-only; the names are the run-config keys, so ``BusClassifier(**kwargs_for(
        BusClassifier, cfg), num_classes=..., ...)`` builds it from a config."""
        super().__init__()
        self.save_hyperparameters()
        if scheduler not in SCHEDULERS:
            raise BusClassifyError(f"unknown scheduler {scheduler!r}; use one of {SCHEDULERS}")
        self.model = create_model(model, num_classes, img_size, weights, model_kwargs)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if mixup < 0:
            raise BusClassifyError(f"mixup must be >= 0 (a Beta alpha; 0 = off), got {mixup}")
        if seg_aux < 0:
            raise BusClassifyError(f"seg_aux must be >= 0 (a loss weight; 0 = off), got {seg_aux}")
        # Training-only lesion head: a 1x1 conv on the last feature map, fitted to the share of
        # lesion pixels in each cell. Inference and checkpoints of `model` do not use it.
        self.seg_head = LesionHead(self.model, img_size) if seg_aux > 0 else None
        self.criterion = build_loss(
            loss, class_weights if loss != "ce" else None, focal_gamma, label_smoothing
        )
        names = class_names or ([] if num_classes != 2 else ["no_lump", "lump"])
        self.positive = positive_classes(names) if names else [num_classes - 1]
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_f1 = MulticlassF1Score(num_classes, average="macro")
        self.val_auc = BinaryAUROC()

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.hparams.channels_last else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self._layout(x))

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch[:2]
        alpha = self.hparams.mixup
        lam, perm = 1.0, None
        if alpha > 0:  # mixup: blend image pairs, weight the two targets' losses the same way
            lam = float(torch.distributions.Beta(alpha, alpha).sample())
            perm = torch.randperm(len(y), device=y.device)
            x = lam * x + (1 - lam) * x[perm]
        if self.seg_head is None:
            logits = self(x)
        else:
            feats = self.model.forward_features(self._layout(x))
            logits = self.model.forward_head(feats)
        loss = lam * self.criterion(logits, y)
        if perm is not None:
            loss = loss + (1 - lam) * self.criterion(logits, y[perm])
        if self.seg_head is not None:
            mask, has_mask = batch[2], batch[3]
            if perm is not None:
                mask, has_mask = lam * mask + (1 - lam) * mask[perm], has_mask * has_mask[perm]
            seg_loss = self.seg_head.loss(feats, mask, has_mask)
            self.log(
                "train_seg_loss",
                seg_loss,
                on_step=False,
                on_epoch=True,
                batch_size=len(y),
                sync_dist=True,
            )
            loss = loss + self.hparams.seg_aux * seg_loss
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
        logits = self(x).float()
        loss = torch.nn.functional.cross_entropy(logits, y)
        score = logits.softmax(dim=1)[:, self.positive].sum(dim=1)
        self.val_acc.update(logits, y)
        self.val_f1.update(logits, y)
        self.val_auc.update(
            score, torch.isin(y, torch.tensor(self.positive, device=y.device)).long()
        )
        self.log("val_loss", loss, prog_bar=True, on_epoch=True, batch_size=len(y), sync_dist=True)
        self.log("val_acc", self.val_acc, prog_bar=True, on_epoch=True)
        self.log("val_f1", self.val_f1, prog_bar=True, on_epoch=True)
        self.log("val_auc", self.val_auc, prog_bar=True, on_epoch=True)

    def on_validation_epoch_end(self) -> None:
        # Selection score for monitor "val_auc_f1": ranking (AUC) and the arg-max decisions
        # (macro F1) must both be good; AUC alone can pick an epoch whose decisions are biased.
        auc, f1 = self.val_auc.compute(), self.val_f1.compute()
        self.log("val_auc_f1", (auc + f1) / 2, prog_bar=False, sync_dist=True)

    def configure_optimizers(self):
        params = list(self.model.parameters())
        if self.seg_head is not None:
            params += list(self.seg_head.parameters())
        opt = torch.optim.AdamW(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        kind = self.hparams.scheduler
        if kind == "none":
            return opt
        if kind == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(
                opt, T_max=max(1, int(self.hparams.epochs))
            )
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
        steps = int(self.trainer.estimated_stepping_batches)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.hparams.lr, total_steps=max(1, steps), pct_start=0.2
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
