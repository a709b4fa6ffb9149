"""Batch inference on a loaded pipeline: render views to colour and instance ids (in memory, no file I/O)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


@torch.no_grad()
def render_camera(model, cameras, index: int) -> dict[str, np.ndarray]:
    """Render camera ``index``: ``rgb`` (H,W,3) float, ``ids`` (H,W) argmax instance, ``logits`` (H,W,L)."""
    cam = cameras[index : index + 1].to(model.device)
    out = model.get_outputs_for_camera(cam)
    logits = out["instance_logits"].float()
    return {
        "rgb": out["rgb"].clamp(0, 1).cpu().numpy(),
        "ids": logits.argmax(-1).cpu().numpy(),
        "logits": logits.cpu().numpy(),
        "depth": out["depth"][..., 0].cpu().numpy() if "depth" in out else None,
    }


def render_split(
    pipeline, split: str = "test"
) -> Iterator[tuple[int, dict, dict[str, np.ndarray]]]:
    """Yield (index, dataset item, render) for every view of the ``test`` (eval) or ``train`` dataset."""
    dm = pipeline.datamanager
    ds = dm.eval_dataset if split == "test" else dm.train_dataset
    for i in range(len(ds) if ds is not None else 0):
        yield i, ds[i], render_camera(pipeline.model, ds.cameras, i)
