"""Load a trained run (config.yml + newest checkpoint) without downloads and with weights_only."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from instance_nerf.engine.offline import latest_checkpoint, load_checkpoint, offline_lpips


def load_run(config_path: str | Path, device: str = "cpu", test_mode: str = "test"):
    """Return (trainer config, pipeline in eval mode, checkpoint path) for a finished run."""
    config_path = Path(config_path)
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: run config not found")
    from nerfstudio.engine.trainer import TrainerConfig

    # nerfstudio stores its config as a Python-tagged YAML file; this is how its own tools read it.
    config = yaml.load(config_path.read_text(), Loader=yaml.Loader)
    if not isinstance(config, TrainerConfig):
        raise ValueError(f"{config_path}: not a nerfstudio trainer config")
    model_cfg = config.pipeline.model
    if hasattr(model_cfg, "nerfacto_checkpoint"):
        model_cfg.nerfacto_checkpoint = None  # weights come from this run's own checkpoint
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
