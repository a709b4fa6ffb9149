"""The save/load pair: torch files written atomically, read back with ``weights_only=True``; finished runs.

The allow-list (numpy scalars nerfstudio's schedulers leave in checkpoints) is in
``models/offline.py`` because the model reads nerfacto checkpoints while it is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from instance_nerf.data.io import InstanceNerfError, atomic_path
from instance_nerf.models.offline import (
    latest_checkpoint,
    load_checkpoint,
    load_weights,
    offline_lpips,
)

__all__ = ["latest_checkpoint", "load_checkpoint", "load_run", "load_weights", "save_checkpoint"]


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """``torch.save`` to a temp file beside ``path``, then rename (a crash never leaves half a file)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_run(config_path: str | Path, device: str = "cpu", test_mode: str = "test"):
    """Return (trainer config, pipeline in eval mode, checkpoint path) for a finished run."""
    config_path = Path(config_path)
    if not config_path.is_file():
        raise InstanceNerfError(f"{config_path}: run config not found")
    from nerfstudio.engine.trainer import TrainerConfig

    # nerfstudio stores its config as a Python-tagged YAML file; this is how its own tools read it.
    try:
        config = yaml.load(config_path.read_text(), Loader=yaml.Loader)
    except yaml.YAMLError as exc:
        raise InstanceNerfError(f"{config_path}: not a nerfstudio run config (YAML error)") from exc
    if not isinstance(config, TrainerConfig):
        raise InstanceNerfError(f"{config_path}: not a nerfstudio trainer config")
    model_cfg = config.pipeline.model
    if hasattr(model_cfg, "nerfacto_checkpoint"):
        model_cfg.nerfacto_checkpoint = None  # weights come from this run's own checkpoint
    if hasattr(model_cfg, "init_checkpoint"):
        model_cfg.init_checkpoint = None
    config.load_dir = config.get_checkpoint_dir()
    if not config.load_dir.is_dir():
        config.load_dir = config_path.parent / "nerfstudio_models"
    ckpt = latest_checkpoint(config.load_dir)
    with offline_lpips():
        pipeline = config.pipeline.setup(device=torch.device(device), test_mode=test_mode)
    state = load_checkpoint(ckpt)
    pipeline.load_pipeline(state["pipeline"], state["step"])
    pipeline.eval()
    return config, pipeline, ckpt
