"""SSL training with Lightning: checkpoints, resume, TensorBoard, seed, AMP/DDP on GPU."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.data import DataLoader

from spheroid_rank.data.dataset import SpheroidImages
from spheroid_rank.data.io import write_json
from spheroid_rank.data.transforms import ssl_transform
from spheroid_rank.engine.checkpoint import save_backbone
from spheroid_rank.engine.config import SSLConfig
from spheroid_rank.engine.ssl_module import SSLModule

log = logging.getLogger(__name__)


__all__ = ["SSLConfig", "train_ssl"]


def train_ssl(
    table: pd.DataFrame, out: str | Path, cfg: SSLConfig, progress: bool = True
) -> Path | None:
    """Train on every image of ``table``; resumes from ``out/checkpoints/last.ckpt``.

    ``cfg.batch_size`` is the global batch: with DDP each of the ``world_size`` processes
    gets ``batch_size // world_size`` images per step (Lightning's DistributedSampler gives
    every process a different share of each epoch). Only the rank-0 process writes:
    ``out/backbone.pt`` (``{"config", "state_dict"}``, loadable with ``weights_only=True``),
    ``out/train_summary.json`` (samples seen and mean loss per epoch over all processes, and
    the largest weight difference across processes), checkpoints and TensorBoard logs.
    Returns the path of ``backbone.pt`` on rank 0 and None on the other ranks.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    n_views = 2
    ds = SpheroidImages(
        table,
        cfg.load_size,
        cfg.focal,
        ssl_transform(cfg.img_size, cfg.in_chans, n_views, cfg.min_scale),
    ).preload()
    module = SSLModule(
        cfg.method, cfg.backbone, cfg.in_chans, cfg.img_size, cfg.lr, **cfg.method_kwargs
    )
    cuda = torch.cuda.is_available() and cfg.accelerator in ("auto", "gpu", "cuda")
    precision = cfg.precision or ("16-mixed" if cuda else "32-true")
    multi = cuda and (cfg.devices == -1 or (isinstance(cfg.devices, int) and cfg.devices > 1))
    strategy = cfg.strategy if cfg.strategy != "auto" else ("ddp" if multi else "auto")
    ckpt_dir = out / "checkpoints"
    trainer = L.Trainer(
        max_epochs=cfg.epochs,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=strategy,
        precision=precision,
        default_root_dir=str(out),
        logger=TensorBoardLogger(str(out), name="tensorboard"),
        callbacks=[ModelCheckpoint(dirpath=str(ckpt_dir), save_last=True, save_top_k=0)],
        enable_progress_bar=progress,
        enable_model_summary=False,
        log_every_n_steps=1,
        deterministic=False,
    )
    per_process = max(min(cfg.batch_size // trainer.world_size, len(ds) // trainer.world_size), 1)
    dl = DataLoader(
        ds,
        batch_size=per_process,
        shuffle=True,
        drop_last=True,
        num_workers=cfg.workers,
        persistent_workers=cfg.workers > 0,
    )
    last = ckpt_dir / "last.ckpt"
    if last.exists():
        log.info("resuming SSL training from %s", last)
    trainer.fit(module, dl, ckpt_path=str(last) if last.exists() else None)
    if not trainer.is_global_zero:
        return None
    path = save_backbone(module.model, cfg, out / "backbone.pt")
    summary = write_json(
        out / "train_summary.json",
        {
            "world_size": trainer.world_size,
            "global_batch": per_process * trainer.world_size,
            "per_process_batch": per_process,
            "images": len(ds),
            "epochs": module.epoch_stats,
            "max_abs_diff_across_ranks": module.rank_spread,
        },
    )
    for written in (path, summary):
        log.info("rank %d wrote %s", trainer.global_rank, written)
    return path
