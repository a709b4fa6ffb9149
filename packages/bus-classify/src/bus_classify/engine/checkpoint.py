"""The checkpoint save/load pair: ``weights_only=True`` loading, class-count checks."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from bus_classify.data.io import BusClassifyError, atomic_path
from bus_classify.models.factory import create_model


def save_classifier(model: nn.Module, hparams: dict, path: str | Path) -> Path:
    """Write ``model`` in the layout of a Lightning checkpoint of :class:`BusClassifier`
    (``state_dict`` under ``model.``, ``hyper_parameters``), atomically."""
    if "model" not in hparams or "num_classes" not in hparams:
        raise BusClassifyError(f"{path}: hyper-parameters need 'model' and 'num_classes'")
    state = {f"model.{k}": v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"state_dict": state, "hyper_parameters": dict(hparams)}, tmp)
    return Path(path)


def read_checkpoint(path: str | Path, map_location: str = "cpu") -> dict:
    """``torch.load(weights_only=True)`` of a bus-classify checkpoint, or :class:`BusClassifyError`."""
    path = Path(path)
    if not path.is_file():
        raise BusClassifyError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # the weights-only unpickler fails in many ways on foreign bytes
        kind = type(e).__name__
        raise BusClassifyError(
            f"{path}: not a bus-classify checkpoint (torch cannot read it as "
            f"a weights-only checkpoint: {kind})"
        ) from None
    hp = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    if not isinstance(hp, dict) or "state_dict" not in ckpt:
        missing = "hyper_parameters" if not isinstance(hp, dict) else "state_dict"
        raise BusClassifyError(f"{path}: not a bus-classify checkpoint (no {missing!r} entry)")
    if "model" not in hp and "model_name" not in hp:
        raise BusClassifyError(
            f"{path}: not a bus-classify checkpoint (no model name in hyper_parameters)"
        )
    return ckpt


def load_classifier(
    path: str | Path, expected_classes: int | None = None, map_location: str = "cpu"
) -> tuple[nn.Module, dict]:
    """Rebuild the network of a checkpoint written by ``bus-classify train``.

    Returns ``(model in eval mode, hyper-parameters)``. Raises :class:`BusClassifyError` naming
    the file when it is not such a checkpoint or its class count differs from ``expected_classes``.
    """
    ckpt = read_checkpoint(path, map_location)
    hp = dict(ckpt["hyper_parameters"])
    hp.setdefault("model", hp.get("model_name"))
    n = int(hp["num_classes"])
    if expected_classes is not None and n != expected_classes:
        raise BusClassifyError(
            f"{path}: checkpoint has {n} classes but the data has "
            f"{expected_classes} (task mismatch: binary vs 3class?)"
        )
    model = create_model(hp["model"], n, hp.get("img_size"), None, hp.get("model_kwargs"))
    state = {k[len("model.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise BusClassifyError(
            f"{path}: weights do not match {hp['model']} "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return model.eval(), hp


def eval_transform(hp: dict):
    """The deterministic input transform a checkpoint was trained with (no augmentation)."""
    from bus_classify.data.transforms import build_transform

    return build_transform(
        hp["img_size"],
        train=False,
        parula=hp.get("parula", False),
        resize=hp.get("resize", "stretch"),
    )
