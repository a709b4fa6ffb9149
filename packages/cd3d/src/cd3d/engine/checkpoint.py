"""The checkpoint save/load pair: a :class:`ChangeDetector` to and from a Lightning-style ``.ckpt``.

Loading uses ``torch.load(weights_only=True)``; a cd3d checkpoint holds only tensors and plain
containers, so no extra globals are allowed.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from ..data.dataset import ChangeDataset
from ..data.io import CD3DError, atomic_path
from ..eval.baselines import ColourDiff, NoChange
from ..models.wrapper import ChangeDetector, Predictor


def save_detector(det: ChangeDetector, path: str | Path) -> Path:
    """Write ``det`` in the layout Lightning gives :class:`CD3DModule` checkpoints (atomically)."""
    ckpt = {
        "hyper_parameters": {"detector": det.config()},
        "state_dict": {f"model.{k}": v.detach().cpu() for k, v in det.state_dict().items()},
    }
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return Path(path)


def _read(path: Path, map_location: str | torch.device) -> object:
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # the weights-only unpickler fails in many ways on foreign bytes
        # torch's own text advises unsafe loading; say what the file is instead
        if path.stat().st_size == 0:
            kind = "empty file"
        elif not zipfile.is_zipfile(path):
            kind = "not a PyTorch file, or truncated"
        elif isinstance(exc, pickle.UnpicklingError):
            kind = "it holds Python objects other than tensors and plain containers"
        else:
            kind = "a damaged PyTorch file"
        raise CD3DError(f"{path}: not a cd3d checkpoint ({kind})") from exc


def load_detector(path: str | Path, map_location: str | torch.device = "cpu") -> ChangeDetector:
    """Rebuild the detector stored in a cd3d checkpoint (``.ckpt`` from training or :func:`save_detector`)."""
    path = Path(path)
    if not path.is_file():
        raise CD3DError(f"{path}: checkpoint not found")
    ckpt = _read(path, map_location)
    if not isinstance(ckpt, dict):
        raise CD3DError(
            f"{path}: not a cd3d checkpoint (a {type(ckpt).__name__}, not a checkpoint mapping)"
        )
    hp = ckpt.get("hyper_parameters")
    if not isinstance(hp, dict) or "detector" not in hp:
        raise CD3DError(f"{path}: not a cd3d checkpoint (no 'detector' hyper-parameters)")
    if "state_dict" not in ckpt:
        raise CD3DError(f"{path}: not a cd3d checkpoint (no 'state_dict')")
    det = ChangeDetector(**hp["detector"])
    state = {k[len("model.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    try:
        det.load_state_dict(state)
    except RuntimeError as exc:
        raise CD3DError(
            f"{path}: cd3d checkpoint weights do not fit model {det.model_name!r} "
            f"({str(exc).splitlines()[0]})"
        ) from exc
    return det.eval()


def load_predictor(
    checkpoint: str | Path | None = None,
    baseline: str | None = None,
    data: str | Path | None = None,
    layout: str = "auto",
) -> Predictor:
    """A trained detector from ``checkpoint``, or a baseline (``nochange``, or ``colourdiff``
    fitted on the train split of ``data``)."""
    if baseline == "nochange":
        return NoChange()
    if baseline == "colourdiff":
        if data is None:
            raise CD3DError(
                "the colourdiff baseline needs --data (it is fitted on the train split)"
            )
        return ColourDiff.fit(ChangeDataset(data, "train", layout))
    if baseline is not None:
        raise CD3DError(f"unknown baseline {baseline!r}; choose nochange or colourdiff")
    if not checkpoint:
        raise CD3DError("--checkpoint is required unless --baseline is given")
    return load_detector(checkpoint)
