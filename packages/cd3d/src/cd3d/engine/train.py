"""Build the Lightning trainer from a config and run (or resume) training."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from ..data.io import CD3DError, write_json
from ..data.stats import compute_stats
from ..models.wrapper import IMAGENET_MEAN, IMAGENET_STD
from .config import load_config
from .datamodule import CD3DDataModule
from .module import CD3DModule


def _normalisation(cfg: dict, out: Path) -> tuple[list[float], list[float]]:
    norm = cfg["data"].get("normalize", "dataset")
    if norm == "imagenet":
        return list(IMAGENET_MEAN), list(IMAGENET_STD)
    if isinstance(norm, dict):
        return list(norm["mean"]), list(norm["std"])
    if norm != "dataset":
        raise CD3DError(
            f"data.normalize must be dataset, imagenet or a mean/std mapping, not {norm!r}"
        )
    stats_file = out / "stats.json"
    if stats_file.is_file():
        st = json.loads(stats_file.read_text())
    else:
        d = cfg["data"]
        st = compute_stats(
            d["root"], "train", d.get("layout", "auto"), split_seed=int(d.get("split_seed", 0))
        )
        if rank_zero_only.rank == 0:  # other DDP ranks compute the same numbers but do not write
            write_json(stats_file, st)
    return st["mean"], st["std"]


def config_callbacks(cfg: dict) -> list[L.Callback]:
    """Callbacks named in the config, LightningCLI style: ``callbacks: [{class_path: pkg.mod.Cls, init_args: {...}}]``."""
    out = []
    for i, spec in enumerate(cfg.get("callbacks") or []):
        if not isinstance(spec, dict) or "class_path" not in spec:
            raise CD3DError(
                f"callbacks[{i}]: expected a mapping with class_path (and optional init_args)"
            )
        module, _, name = str(spec["class_path"]).rpartition(".")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError) as exc:
            raise CD3DError(
                f"callbacks[{i}]: cannot import {spec['class_path']!r} ({exc})"
            ) from exc
        out.append(cls(**(spec.get("init_args") or {})))
    return out


def build(cfg: dict, callbacks: list | None = None) -> tuple[CD3DModule, CD3DDataModule, L.Trainer]:
    """Module, data module and trainer (checkpoints on best F1, best cRMSE and last) for ``cfg``."""
    if not cfg["data"].get("root"):
        raise CD3DError("data.root is not set (pass --data ROOT or set it in the config)")
    out = Path(cfg["out"])
    out.mkdir(parents=True, exist_ok=True)
    L.seed_everything(int(cfg.get("seed", 0)), workers=True, verbose=False)
    mean, std = _normalisation(cfg, out)
    m = cfg["model"]
    detector = {
        "model": m["name"],
        "model_kwargs": m.get("kwargs") or {},
        "mean": mean,
        "std": std,
        "height_scale": float(m.get("height_scale", 40.0)),
        "task": str(cfg.get("task", "3d")),
    }
    module = CD3DModule(
        detector, cfg.get("loss"), cfg.get("optim"), bool(m.get("channels_last", False))
    )
    d = cfg["data"]
    dm = CD3DDataModule(
        d["root"],
        d.get("layout", "auto"),
        int(d.get("batch_size", 4)),
        int(d.get("num_workers", 0)),
        bool(d.get("augment", True)),
        split_seed=int(d.get("split_seed", 0)),
        shuffle=bool(d.get("shuffle", True)),
    )
    ckdir = out / "checkpoints"
    callbacks = [
        ModelCheckpoint(ckdir, "best-f1", monitor="val/f1", mode="max", save_last=True),
        LearningRateMonitor("step"),
        *config_callbacks(cfg),
        *(callbacks or []),
    ]
    if detector["task"] == "3d":  # a 2D-only run has no height error to monitor
        callbacks.insert(
            1, ModelCheckpoint(ckdir, "best-crmse", monitor="val/crmse_3d_nonzero", mode="min")
        )
    t = dict(cfg.get("trainer") or {})
    trainer = L.Trainer(
        default_root_dir=str(out),
        callbacks=callbacks,
        deterministic=False,
        logger=TensorBoardLogger(str(out), name="tb", default_hp_metric=False),
        **t,
    )
    return module, dm, trainer


def train(cfg: dict, resume: str | None = "auto", callbacks: list | None = None) -> dict:
    """Fit; ``resume='auto'`` continues from ``out/checkpoints/last.ckpt`` when present.

    Extra Lightning ``callbacks`` are added to the trainer's. Under DDP every rank returns the
    report, but only rank 0 writes files (Lightning guards checkpoints and logs; this guards
    ``config.json`` and ``stats.json``).
    """
    module, dm, trainer = build(cfg, callbacks)
    out = Path(cfg["out"])
    if rank_zero_only.rank == 0:
        write_json(out / "config.json", cfg)
    ckpt = None
    if resume == "auto":
        last = out / "checkpoints" / "last.ckpt"
        ckpt = str(last) if last.is_file() else None
    elif resume:
        ckpt = resume
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt)
    cb = {c.filename: c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)}
    f1 = cb["best-f1"]
    return {
        "best_f1": f1.best_model_path,
        "best_f1_score": float(f1.best_model_score) if f1.best_model_score is not None else None,
        "best_crmse": cb["best-crmse"].best_model_path if "best-crmse" in cb else None,
        "rank": trainer.global_rank,
        "world_size": trainer.world_size,
        "last": str(out / "checkpoints" / "last.ckpt"),
        "epochs": trainer.current_epoch,
        "resumed_from": ckpt,
    }


def train_from_config(
    config: str | Path | None = None,
    overrides: list[str] | None = None,
    data: str | None = None,
    out: str | None = None,
    resume: str | None = "auto",
) -> dict:
    """The ``train`` command: load ``config`` with ``overrides`` (``data``/``out`` set
    ``data.root``/``out``) and :func:`train` it."""
    sets = list(overrides or [])
    if data:
        sets.append(f"data.root={data}")
    if out:
        sets.append(f"out={out}")
    return train(load_config(config, sets), resume=resume)
