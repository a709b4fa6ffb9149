"""Checkpoint selection and early stopping that skip the LR warm-up (``select_from_epoch``)."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from bus_classify.data.io import BusClassifyError
from bus_classify.engine.config import load_config
from bus_classify.engine.train import (
    SelectFromEpochCheckpoint,
    SelectFromEpochEarlyStopping,
    selection_start,
)


class Scripted(L.LightningModule):
    """Logs a fixed ``val_auc`` per epoch (the real trainer and callbacks decide the rest)."""

    def __init__(self, scores: list[float]) -> None:
        super().__init__()
        self.scores, self.layer, self.epochs_run = scores, torch.nn.Linear(2, 1), []

    def training_step(self, batch, batch_idx):
        self.epochs_run.append(self.current_epoch)
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val_auc", self.scores[self.current_epoch], on_epoch=True, batch_size=1)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(2, 2)))

    val_dataloader = train_dataloader


def _fit(tmp_path, scores, from_epoch, patience=None):
    best = SelectFromEpochCheckpoint(
        dirpath=tmp_path, filename="best", monitor="val_auc", mode="max", from_epoch=from_epoch
    )
    cbs = [best]
    if patience is not None:
        cbs.append(
            SelectFromEpochEarlyStopping(
                "val_auc", patience=patience, mode="max", from_epoch=from_epoch
            )
        )
    module = Scripted(scores)
    L.Trainer(
        max_epochs=len(scores),
        callbacks=cbs,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
    ).fit(module)
    epoch = torch.load(best.best_model_path, weights_only=True)["epoch"]
    return epoch, sorted(set(module.epochs_run))


SCORES = [0.9, 0.5, 0.6, 0.7, 0.65, 0.6]  # best in the "warm-up" (epoch 1), then 0.7 at epoch 4


def test_best_checkpoint_skips_warmup_epochs(tmp_path):
    assert _fit(tmp_path / "a", SCORES, from_epoch=1)[0] == 0  # plain: keeps the warm-up peak
    assert _fit(tmp_path / "b", SCORES, from_epoch=3)[0] == 3  # 0-based epoch 3 = 0.7


def test_early_stopping_counts_only_after_warmup(tmp_path):
    _, run = _fit(tmp_path / "a", SCORES, from_epoch=1, patience=1)
    assert run == [0, 1]  # 0.9 then 0.5: stops after the first flat epoch
    best, run = _fit(tmp_path / "b", SCORES, from_epoch=3, patience=1)
    assert (best, run) == (3, [0, 1, 2, 3, 4])  # 0.6, 0.7 improve; 0.65 stops it


def test_selection_start_values():
    cfg = load_config("cnn", ["select_from_epoch=auto"])
    assert selection_start(cfg) == 9  # 40 epochs, one-cycle warm-up = first 8
    assert selection_start({**cfg, "epochs": 30}) == 7
    assert selection_start(load_config("swin")) == 4  # 15 epochs, warm-up 3
    assert selection_start({**cfg, "scheduler": "cosine"}) == 1
    assert selection_start({**cfg, "select_from_epoch": None}) == 1
    assert selection_start({**cfg, "select_from_epoch": 50}) == 40  # clamped: a best always exists
    with pytest.raises(BusClassifyError, match="select_from_epoch"):
        selection_start({**cfg, "select_from_epoch": 0})
