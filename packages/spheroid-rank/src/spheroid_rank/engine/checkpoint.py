"""The save/load pair of the exported embedding network (``backbone.pt``).

The file is ``{"format": "spheroid-rank/backbone", "config": <SSLConfig as dict>,
"state_dict": {...}}``: plain containers and tensors only, so it loads with
``torch.load(weights_only=True)`` and needs no allow-list entries.
"""

from __future__ import annotations

import pickle
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from spheroid_rank.data.io import SpheroidRankError, atomic_path
from spheroid_rank.engine.config import SSLConfig, build
from spheroid_rank.models.ssl import SSLMethod, build_method

FORMAT = "spheroid-rank/backbone"


def save_backbone(model: nn.Module, cfg: SSLConfig, path: str | Path) -> Path:
    """Save the trained SSL method (backbone and heads) with its config, atomically."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "config": asdict(cfg), "state_dict": state}, tmp)
    return Path(path)


def _read(path: Path) -> dict:
    if not path.is_file():
        raise SpheroidRankError(f"{path}: model file does not exist")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's own text advises unsafe loading; say what the file is instead
        what = (
            "a pickle holding objects outside the weights-only allow-list, e.g. a Lightning .ckpt"
            if "global" in str(exc).lower()
            else "not a torch file"
        )
        raise SpheroidRankError(f"{path}: not a spheroid-rank checkpoint ({what})") from None
    except (
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        KeyError,
        IndexError,
        TypeError,
        AttributeError,
    ) as exc:
        # a text or truncated file makes the weights-only unpickler fail in many ways
        raise SpheroidRankError(
            f"{path}: not a spheroid-rank checkpoint (not a torch file: {exc.__class__.__name__})"
        ) from None
    if not isinstance(blob, dict):
        raise SpheroidRankError(
            f"{path}: not a spheroid-rank checkpoint (holds a {type(blob).__name__}, not a dict)"
        )
    for key in ("config", "state_dict"):
        if key not in blob:
            raise SpheroidRankError(f"{path}: not a spheroid-rank checkpoint (no {key!r} key)")
    return blob


def load_model(path: str | Path) -> tuple[SSLMethod, SSLConfig]:
    """Rebuild the SSL method saved by :func:`save_backbone`, in eval mode, on the CPU."""
    path = Path(path)
    blob = _read(path)
    cfg = build(SSLConfig, blob["config"], f"{path}: config")
    model = build_method(
        cfg.method,
        backbone=cfg.backbone,
        in_chans=cfg.in_chans,
        img_size=cfg.img_size,
        **cfg.method_kwargs,
    )
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise SpheroidRankError(
            f"{path}: weights do not match {cfg.method}/{cfg.backbone} ({first})"
        ) from None
    return model.eval(), cfg
