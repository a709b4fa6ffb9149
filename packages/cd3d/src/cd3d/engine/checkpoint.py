"""Load a trained :class:`ChangeDetector` from a Lightning checkpoint with ``weights_only=True``."""

from __future__ import annotations

from pathlib import Path

import torch

from ..models.wrapper import ChangeDetector


def load_detector(path: str | Path, map_location: str | torch.device = "cpu") -> ChangeDetector:
    """Rebuild the detector stored in a cd3d training checkpoint (``.ckpt``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable checkpoint ({exc})") from exc
    hp = ckpt.get("hyper_parameters", {})
    if "detector" not in hp:
        raise ValueError(f"{path}: not a cd3d checkpoint (no 'detector' hyper-parameters)")
    det = ChangeDetector(**hp["detector"])
    state = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    det.load_state_dict(state)
    return det.eval()
