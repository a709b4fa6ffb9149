"""Train a classifier with Lightning: best checkpoint on min val loss, early stopping, resume."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger

from bus_classify.data.io import BusClassifyError, atomic_write
from bus_classify.data.sources import class_names
from bus_classify.engine.config import kwargs_for
from bus_classify.engine.datamodule import BusDataModule
from bus_classify.engine.losses import inverse_frequency_weights
from bus_classify.engine.module import BusClassifier

log = logging.getLogger(__name__)


def _precision(cfg: dict, accelerator: str) -> str:
    if accelerator == "cpu" or not cfg.get("amp"):
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def train(
    cfg: dict,
    split_csv: str,
    out: str | Path,
    device: str = "auto",
    devices="auto",
    resume: bool = False,
    progress: bool = True,
    max_time: str | None = None,
) -> Path:
    """Fit one model; returns the path of the best checkpoint (min validation loss).

    ``out`` receives ``checkpoints/best.ckpt``, ``checkpoints/last.ckpt``, tensorboard logs in
    ``tb/`` and the resolved ``config.yaml``. With ``resume`` an existing ``last.ckpt`` is
    continued (optimizer, epoch and callback state included).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    L.seed_everything(int(cfg["seed"]), workers=True)
    names = class_names(cfg["task"])
    dm = BusDataModule(split_csv=split_csv, **kwargs_for(BusDataModule, cfg))
    bad = [r["path"] for r in dm.rows if not 0 <= r["label"] < len(names)]
    if bad:
        raise BusClassifyError(
            f"{split_csv}: label outside 0..{len(names) - 1} for {bad[0]} (task {cfg['task']!r})"
        )
    weights = inverse_frequency_weights(dm.train_labels, len(names))
    module = BusClassifier(
        **kwargs_for(BusClassifier, cfg),
        num_classes=len(names),
        class_weights=weights,
        class_names=names,
    )
    accelerator = "cuda" if device == "cuda" else ("cpu" if device == "cpu" else "auto")
    if accelerator == "auto":
        accelerator = "cuda" if torch.cuda.is_available() else "cpu"
    ckpt_dir = out / "checkpoints"
    best_cb = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best",
        monitor="val_loss",
        mode="min",
        save_top_k=1,
        enable_version_counter=False,
    )
    last_cb = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="last",
        monitor=None,
        save_top_k=1,
        every_n_epochs=1,
        enable_version_counter=False,
    )
    callbacks = [
        best_cb,
        last_cb,
        EarlyStopping("val_loss", patience=int(cfg["patience"]), mode="min"),
    ]
    if progress:
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks.append(RichProgressBar(leave=True))
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=devices,
        max_epochs=int(cfg["epochs"]),
        precision=_precision(cfg, accelerator),
        callbacks=callbacks,
        logger=TensorBoardLogger(out, name="tb", version=""),
        deterministic=False,
        enable_progress_bar=progress,
        log_every_n_steps=1,
        default_root_dir=out,
        max_time=max_time,
        enable_model_summary=progress,
    )
    last = ckpt_dir / "last.ckpt"
    ckpt_path = str(last) if resume and last.exists() else None
    if resume and ckpt_path is None:
        log.warning("--resume: no %s yet, starting from scratch", last)
    with atomic_write(out / "config.yaml") as f:
        yaml.safe_dump({**cfg, "split_csv": str(split_csv)}, f, sort_keys=False)
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path, weights_only=True)
    best = Path(best_cb.best_model_path or last)
    log.info("best checkpoint %s (val_loss %s)", best, best_cb.best_model_score)
    return best
