"""Proposals of a trained NeRF-RCNN's first stage for one grid file → ``rois.npz``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from instance_nerf.data.io import read_npz, save_npz
from instance_nerf.rcnn.data import grid_tensor
from instance_nerf.rcnn.fcos import fcos_postprocess
from instance_nerf.rcnn.model import NeRFRCNN


@torch.no_grad()
def rpn_proposals(
    ckpt: Path,
    grid_path: Path,
    out: Path,
    nms: float | None = None,
    top: int | None = None,
    device: str = "cpu",
) -> dict:
    """FCOS proposals (post-NMS, falling score) written as ``boxes (P, 6)`` in voxels, ``scores (P,)``,
    ``bbox_min``, ``bbox_max`` and ``nms``; ``nms``/``top`` default to the checkpoint's values."""
    model = NeRFRCNN.load(ckpt, device).eval()
    grid = grid_tensor(grid_path)
    model.check_grid(grid, grid_path)
    c = model.config
    nms = c.rpn_nms if nms is None else nms
    top = c.rpn_post_nms_test if top is None else top
    feats = model.backbone(grid[None].to(device))
    boxes, scores = fcos_postprocess(
        model.rpn(feats), model.strides, tuple(grid.shape[1:]), c.rpn_pre_nms, nms, top
    )[0]
    g = read_npz(grid_path, ("bbox_min", "bbox_max"))
    save_npz(
        out,
        boxes=boxes.cpu().numpy().astype(np.float32),
        scores=scores.cpu().numpy().astype(np.float32),
        bbox_min=g["bbox_min"],
        bbox_max=g["bbox_max"],
        nms=np.float32(nms),
    )
    return {
        "out": str(out),
        "proposals": int(len(scores)),
        "top_score": float(scores[0]) if len(scores) else None,
    }
