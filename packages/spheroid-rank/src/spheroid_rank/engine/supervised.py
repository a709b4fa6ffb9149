"""Supervised baseline: a randomly initialised ResNet-18 trained on the group labels
with weaker augmentations (crop 0.8-1, flips, blur), same well split as the probe."""

from __future__ import annotations

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from spheroid_rank.data.dataset import SpheroidImages
from spheroid_rank.data.metadata import GROUPS, probe_split
from spheroid_rank.data.transforms import eval_transform, weak_transform
from spheroid_rank.models.backbones import create_backbone, feature_dim


class SupervisedModule(L.LightningModule):
    """timm backbone + linear classifier over the three groups."""

    def __init__(self, backbone: str = "resnet18", in_chans: int = 1, lr: float = 1e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.backbone = create_backbone(backbone, in_chans)
        self.fc = nn.Linear(feature_dim(self.backbone), len(GROUPS))

    def forward(self, x):
        return self.fc(self.backbone(x))

    def embed(self, x):
        """Penultimate features (the same interface as the SSL methods' ``embed``)."""
        return self.backbone(x)

    def training_step(self, batch, _):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss, prog_bar=True, batch_size=len(y))
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=1e-4)


class _Labelled(torch.utils.data.Dataset):
    def __init__(self, images: SpheroidImages, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        x, _ = self.images[i]
        return x, int(self.labels[i])


def supervised_baseline(meta: pd.DataFrame, **kwargs) -> dict[str, float]:
    """Test accuracy of the supervised baseline on the probe's well-level split
    (keyword arguments as :func:`train_supervised`)."""
    return train_supervised(meta, **kwargs)[1]


def train_supervised(
    meta: pd.DataFrame,
    backbone: str = "resnet18",
    img_size: int = 64,
    epochs: int = 10,
    batch_size: int = 32,
    min_day: int = 8,
    seed: int = 0,
    accelerator: str = "auto",
    progress: bool = False,
) -> tuple[SupervisedModule, dict[str, float]]:
    """Train the baseline on the probe's training wells; returns the model (eval mode) and
    its accuracy on the probe's test wells."""
    L.seed_everything(seed, verbose=False)
    y = meta["group"].map({g: i for i, g in enumerate(GROUPS)}).to_numpy()
    tr, te = probe_split(meta, min_day, seed=seed)
    train_ds = _Labelled(SpheroidImages(meta, img_size + 8, transform=weak_transform(img_size)), y)
    test_ds = _Labelled(SpheroidImages(meta, img_size + 8, transform=eval_transform(img_size)), y)
    module = SupervisedModule(backbone)
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator=accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
    )
    trainer.fit(module, DataLoader(Subset(train_ds, tr), batch_size=batch_size, shuffle=True))
    module.eval()
    preds = []
    with torch.no_grad():
        for x, _ in DataLoader(Subset(test_ds, te), batch_size=128):
            preds.append(module(x.to(module.device)).argmax(1).cpu())
    pred = torch.cat(preds).numpy()
    from sklearn.metrics import balanced_accuracy_score

    return module, {
        "backbone": backbone,
        "epochs": epochs,
        "accuracy": float((pred == y[te]).mean()),
        "balanced_accuracy": float(balanced_accuracy_score(y[te], pred)),
    }
