"""Checkpoint save/load: ``weights_only=True`` with the package's allow-list."""

from __future__ import annotations

import codecs
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer

from groupexp_da.data.io import GroupExpError, atomic_path


def checkpoint_safe_globals() -> list:
    """Types besides tensors that mmengine writes into a checkpoint."""
    dtypes = {type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool")}
    # ``getattr``: mmengine's HistoryBuffer pickles its bound statistics methods
    # (``statistics_methods['min'] = getattr(buffer, 'min')``) inside ``message_hub``.
    return [
        HistoryBuffer,
        np.ndarray,
        np.dtype,
        np.core.multiarray._reconstruct,
        np.core.multiarray.scalar,
        codecs.encode,
        getattr,
        *dtypes,
    ]


def allow_checkpoint_types() -> None:
    """Add the allow-list process-wide (mmengine's own ``load_checkpoint`` calls
    ``torch.load`` without our context, e.g. on ``--resume``)."""
    torch.serialization.add_safe_globals(checkpoint_safe_globals())


def load_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> dict:
    """A checkpoint dict loaded with ``weights_only=True``; other files raise GroupExpError."""
    path = Path(path)
    if not path.is_file():
        raise GroupExpError(f"{path}: checkpoint not found")
    allow_checkpoint_types()
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        what = "empty file" if path.stat().st_size == 0 else type(exc).__name__
        raise GroupExpError(
            f"{path}: not a groupexp-da checkpoint ({what}: not a torch "
            "checkpoint of allowed types)"
        ) from None
    if not isinstance(ckpt, dict):
        raise GroupExpError(f"{path}: not a groupexp-da checkpoint (a {type(ckpt).__name__})")
    return ckpt


def load_state_dict(path: str | os.PathLike) -> dict:
    """Model weights of an mmengine checkpoint (or a bare state dict)."""
    ckpt = load_checkpoint(path)
    state = ckpt.get("state_dict", ckpt)
    if not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise GroupExpError(f"{path}: not a groupexp-da checkpoint (no 'state_dict' of tensors)")
    return state


def load_weights(
    model: torch.nn.Module, path: str | os.PathLike, allow_missing: tuple[str, ...] = ()
) -> list[str]:
    """Load ``path`` into ``model``; missing keys are an error unless they start with one of
    ``allow_missing``. Returns the allowed missing keys."""
    res = model.load_state_dict(load_state_dict(path), strict=False)
    bad = [k for k in res.missing_keys if not k.startswith(tuple(allow_missing))]
    if bad:
        raise GroupExpError(f"{path}: checkpoint lacks weights of this model ({bad[:5]})")
    return [k for k in res.missing_keys if k not in bad]


def save_checkpoint(path: str | os.PathLike, state_dict: dict, meta: dict | None = None) -> Path:
    """Write an mmengine-style ``{'state_dict', 'meta'}`` checkpoint atomically."""
    with atomic_path(path) as tmp:
        torch.save({"state_dict": state_dict, "meta": meta or {}}, tmp)
    return Path(path)


def copy_checkpoint(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy a finished checkpoint into place atomically."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dst)
