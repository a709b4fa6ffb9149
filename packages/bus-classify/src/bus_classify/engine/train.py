"""Train a classifier with Lightning: class imbalance handled, best checkpoint on a validation
metric the majority class cannot win (ROC-AUC by default), optionally only after the LR warm-up
(``select_from_epoch``), per-epoch log, resume."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.callbacks.weight_averaging import EMAWeightAveraging
from lightning.pytorch.loggers import TensorBoardLogger

from bus_classify.data.io import BusClassifyError, atomic_write
from bus_classify.data.sources import class_names
from bus_classify.engine.config import kwargs_for
from bus_classify.engine.datamodule import BusDataModule
from bus_classify.engine.losses import inverse_frequency_weights
from bus_classify.engine.module import BusClassifier

log = logging.getLogger(__name__)


MONITORS = {"val_auc": "max", "val_f1": "max", "val_auc_f1": "max", "val_loss": "min"}
IMBALANCE_RATIO = 2.0


def _precision(cfg: dict, accelerator: str) -> str:
    if accelerator == "cpu" or not cfg.get("amp"):
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def resolve_loss(loss: str, labels: list[int], num_classes: int) -> str:
    """``auto`` becomes ``weighted_ce`` when the largest class outnumbers the smallest more than
    2:1 in ``labels`` (the training split), else ``ce``; other names pass through."""
    if loss != "auto":
        return loss
    counts = [labels.count(c) for c in range(num_classes)]
    present = [c for c in counts if c]
    return "weighted_ce" if max(present) > IMBALANCE_RATIO * min(present) else "ce"


def selection_start(cfg: dict) -> int:
    """First 1-based epoch whose checkpoint may be kept as best and that early stopping counts.

    ``select_from_epoch`` is null (every epoch, 1), an int, or ``auto``: the epoch after the
    one-cycle warm-up (its first 20 % of the epochs; 1 for other schedulers). Clamped to the
    last epoch so a run always keeps a best checkpoint."""
    value, epochs = cfg.get("select_from_epoch"), int(cfg["epochs"])
    if value is None:
        return 1
    if value == "auto":
        value = -(-epochs // 5) + 1 if cfg["scheduler"] == "onecycle" else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BusClassifyError(
            f"select_from_epoch must be null, auto or an int >= 1, got {value!r}"
        )
    return min(value, epochs)


class _FromEpoch:
    """Mixin: ``from_epoch`` (1-based) and whether the trainer's current epoch is before it."""

    def __init__(self, *args, from_epoch: int = 1, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.from_epoch = from_epoch

    def _too_early(self, trainer) -> bool:
        return trainer.current_epoch + 1 < self.from_epoch


class SelectFromEpochCheckpoint(_FromEpoch, ModelCheckpoint):
    """ModelCheckpoint that neither saves nor ranks epochs before ``from_epoch``."""

    def _should_skip_saving_checkpoint(self, trainer) -> bool:
        return self._too_early(trainer) or super()._should_skip_saving_checkpoint(trainer)


class SelectFromEpochEarlyStopping(_FromEpoch, EarlyStopping):
    """EarlyStopping whose patience (and best score) start at epoch ``from_epoch``."""

    def _should_skip_check(self, trainer) -> bool:
        return self._too_early(trainer) or super()._should_skip_check(trainer)


class EpochLog(Callback):
    """One log line per epoch: train loss and the validation metrics."""

    KEYS = (
        "train_loss",
        "train_seg_loss",
        "val_loss",
        "val_acc",
        "val_f1",
        "val_auc",
        "val_auc_f1",
    )

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        m = trainer.callback_metrics
        parts = [f"{k} {float(m[k]):.4f}" for k in self.KEYS if k in m]
        log.info("epoch %d/%d: %s", trainer.current_epoch + 1, trainer.max_epochs, "  ".join(parts))


def train(
    cfg: dict,
    split_csv: str,
    out: str | Path,
    device: str = "auto",
    devices="auto",
    resume: bool = False,
    progress: bool = True,
    max_time: str | None = None,
    strategy: str = "auto",
    trainer_kwargs: dict | None = None,
    extra_callbacks: list | None = None,
    save_last: bool = True,
) -> Path:
    """Fit one model; returns the path of the best checkpoint (by ``cfg["monitor"]``).

    ``out`` receives ``checkpoints/best.ckpt``, ``checkpoints/last.ckpt``, tensorboard logs in
    ``tb/`` and the resolved ``config.yaml``. With ``resume`` an existing ``last.ckpt`` is
    continued (optimizer, scheduler, epoch and callback state included); ``save_last=False``
    skips writing ``last.ckpt`` every epoch (no resume; the CV benchmark's many short runs). ``devices`` > 1 runs
    Lightning DDP (``strategy``); only rank 0 writes files.
    """
    out = Path(out)
    L.seed_everything(int(cfg["seed"]), workers=True)
    names = class_names(cfg["task"])
    dm = BusDataModule(split_csv=split_csv, **kwargs_for(BusDataModule, cfg))
    bad = [r["path"] for r in dm.rows if not 0 <= r["label"] < len(names)]
    if bad:
        raise BusClassifyError(
            f"{split_csv}: label outside 0..{len(names) - 1} for {bad[0]} (task {cfg['task']!r})"
        )
    monitor = cfg["monitor"]
    if monitor not in MONITORS:
        raise BusClassifyError(f"unknown monitor {monitor!r}; use one of {sorted(MONITORS)}")
    loss = resolve_loss(cfg["loss"], dm.train_labels, len(names))
    log.info(
        "loss %s (train classes %s), selection on %s",
        loss,
        [dm.train_labels.count(c) for c in range(len(names))],
        monitor,
    )
    module = BusClassifier(
        **kwargs_for(BusClassifier, {**cfg, "loss": loss}),
        num_classes=len(names),
        class_weights=inverse_frequency_weights(dm.train_labels, len(names)),
        class_names=names,
    )
    accelerator = "cuda" if device == "cuda" else ("cpu" if device == "cpu" else "auto")
    if accelerator == "auto":
        accelerator = "cuda" if torch.cuda.is_available() else "cpu"
    ckpt_dir = out / "checkpoints"
    start = selection_start(cfg)
    if start > 1:
        log.info("best checkpoint and early stopping from epoch %d on", start)
    best_cb = SelectFromEpochCheckpoint(
        from_epoch=start,
        dirpath=ckpt_dir,
        filename="best",
        monitor=monitor,
        mode=MONITORS[monitor],
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
    callbacks = [best_cb, *([last_cb] if save_last else []), EpochLog(), *(extra_callbacks or [])]
    if cfg["ema_decay"] is not None:  # validation and checkpoints see the averaged weights
        decay = float(cfg["ema_decay"])
        if not 0.0 < decay < 1.0:
            raise BusClassifyError(f"ema_decay must be in (0, 1) or null, got {decay}")
        callbacks.insert(0, EMAWeightAveraging(decay=decay))
    if cfg["patience"] is not None:
        callbacks.append(
            SelectFromEpochEarlyStopping(
                monitor, patience=int(cfg["patience"]), mode=MONITORS[monitor], from_epoch=start
            )
        )
    if progress:
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks.append(RichProgressBar(leave=True))
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
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
        **(trainer_kwargs or {}),
    )
    last = ckpt_dir / "last.ckpt"
    ckpt_path = str(last) if resume and last.exists() else None
    if resume and ckpt_path is None:
        log.warning("--resume: no %s yet, starting from scratch", last)
    done = torch.load(last, map_location="cpu", weights_only=True) if ckpt_path else {}
    done = done.get("hyper_parameters", {})
    had_head = float(done.get("seg_aux", 0.0)) > 0
    if ckpt_path and had_head != (float(cfg["seg_aux"]) > 0):
        raise BusClassifyError(
            f"{last}: trained with seg_aux={done.get('seg_aux', 0.0)} (lesion head "
            f"{'in' if had_head else 'not in'} the checkpoint); resume it with seg_aux "
            f"{'> 0' if had_head else '= 0'}"
        )
    if ckpt_path and cfg["scheduler"] == "onecycle":
        if int(done["epochs"]) != int(cfg["epochs"]):
            raise BusClassifyError(
                f"{last}: trained for a {done['epochs']}-epoch one-cycle "
                f"schedule; resume it with epochs={done['epochs']}, or use "
                "scheduler cosine/none to extend a run"
            )
    if trainer.is_global_zero:
        with atomic_write(out / "config.yaml") as f:
            yaml.safe_dump({**cfg, "split_csv": str(split_csv)}, f, sort_keys=False)
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path, weights_only=True)
    best = Path(best_cb.best_model_path or last)
    log.info("best checkpoint %s (%s %s)", best, monitor, best_cb.best_model_score)
    return best
