"""Load trained classifiers safely (``weights_only=True``) and check their class count."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from bus_classify.models.factory import create_model


def load_classifier(path: str | Path, expected_classes: int | None = None,
                    map_location: str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the network of a Lightning checkpoint written by ``bus-classify train``.

    Returns ``(model in eval mode, hyper-parameters)``. Raises ``ValueError`` naming the file
    when it is not such a checkpoint or its class count differs from ``expected_classes``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise ValueError(f"{path}: cannot read checkpoint ({e})") from e
    hp = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    if not hp or "state_dict" not in ckpt or "model_name" not in hp:
        raise ValueError(f"{path}: not a bus-classify training checkpoint")
    n = int(hp["num_classes"])
    if expected_classes is not None and n != expected_classes:
        raise ValueError(f"{path}: checkpoint has {n} classes but the data has {expected_classes}"
                         f" (task mismatch: binary vs 3class?)")
    model = create_model(hp["model_name"], n, hp.get("img_size"), None, hp.get("model_kwargs"))
    state = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not match {hp['model_name']} "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.eval(), dict(hp)
