"""Offline-safe helpers the model needs while it is built: LPIPS without downloads and the weights-only reader.

The allow-list lives here (not in ``engine/checkpoint.py``) because ``InstanceNerfModel`` loads a nerfacto
checkpoint inside ``populate_modules``, and models must not import engine.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from instance_nerf.data.io import InstanceNerfError


class DisabledLPIPS(nn.Module):
    """Stand-in for torchmetrics' LPIPS when AlexNet weights are not available offline.

    It returns NaN instead of a number that would look meaningful but come from random weights.
    """

    def forward(self, img1: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
        return torch.tensor(float("nan"))


def _alexnet_weights_cached() -> bool:
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    return any(hub.glob("alexnet-*.pth")) if hub.is_dir() else False


@contextlib.contextmanager
def offline_lpips() -> Iterator[None]:
    """While active, constructing torchmetrics' LPIPS never touches the network.

    With cached AlexNet weights the real metric is built; otherwise a :class:`DisabledLPIPS`
    (reporting NaN) is returned. nerfstudio imports the class inside ``populate_modules``, so
    patching the module attribute for the duration of model construction is enough.
    """
    import torchmetrics.image.lpip as lpip_mod

    original = lpip_mod.LearnedPerceptualImagePatchSimilarity
    force_off = os.environ.get("INSTANCE_NERF_LPIPS", "auto") == "off"

    def factory(*args: Any, **kwargs: Any) -> nn.Module:
        if not force_off and _alexnet_weights_cached():
            return original(*args, **kwargs)
        warnings.warn(
            "AlexNet weights for LPIPS are not cached; LPIPS is disabled (reported as NaN).",
            stacklevel=2,
        )
        return DisabledLPIPS()

    lpip_mod.LearnedPerceptualImagePatchSimilarity = factory  # type: ignore[assignment]
    try:
        yield
    finally:
        lpip_mod.LearnedPerceptualImagePatchSimilarity = original


def _numpy_safe_globals() -> list:
    """numpy scalar types nerfstudio's LR schedulers leave in checkpoints (``_last_lr``)."""
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    allowed: list = [core.multiarray.scalar, np.dtype]
    allowed += [getattr(np.dtypes, n) for n in ("Float64DType", "Float32DType", "Int64DType")]
    return allowed


def load_weights(
    path: str | Path, allowed: list | None = None, what: str = "instance-nerf checkpoint"
) -> Any:
    """``torch.load(weights_only=True)`` with the numpy scalars of nerfstudio checkpoints (plus ``allowed``).

    Anything that is not such a file raises :class:`InstanceNerfError` saying what the file is not.
    """
    path = Path(path)
    if not path.is_file():
        raise InstanceNerfError(f"{path}: checkpoint not found")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals() + list(allowed or [])):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's unpickler fails in many ways on foreign bytes
        if isinstance(exc, OSError):
            raise
        kind = (
            "an empty or truncated file"
            if isinstance(exc, EOFError)
            else "not a weights-only torch file"
        )
        raise InstanceNerfError(f"{path}: not a {what} ({kind})") from None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a nerfstudio ``step-*.ckpt`` (weights only) and check it holds a pipeline state."""
    state = load_weights(path, what="nerfstudio checkpoint")
    if not isinstance(state, dict) or "pipeline" not in state:
        raise InstanceNerfError(f"{path}: not a nerfstudio checkpoint (no 'pipeline' key)")
    return state


def latest_checkpoint(ckpt_dir: str | Path) -> Path:
    """Newest ``step-*.ckpt`` in a nerfstudio checkpoint folder."""
    ckpt_dir = Path(ckpt_dir)
    ckpts = sorted(ckpt_dir.glob("step-*.ckpt"))
    if not ckpts:
        raise InstanceNerfError(f"{ckpt_dir}: no step-*.ckpt checkpoints")
    return ckpts[-1]
