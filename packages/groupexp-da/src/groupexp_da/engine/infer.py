"""Model/dataset building and batched inference over an in-memory dataset object."""

from __future__ import annotations

import copy

import numpy as np
import torch
from mmengine.config import Config, ConfigDict

from groupexp_da.engine.checkpoint import load_weights


def build_model(
    cfg: Config,
    checkpoint: str | None = None,
    device: str = "cpu",
    allow_missing: tuple[str, ...] = (),
):
    """``cfg.model`` in eval mode, with ``checkpoint``'s weights when given."""
    from mmdet3d.registry import MODELS
    from mmdet3d.utils import register_all_modules

    import groupexp_da.register  # noqa: F401

    register_all_modules(init_default_scope=True)
    model = MODELS.build(copy.deepcopy(cfg.model))
    if checkpoint:
        load_weights(model, checkpoint, allow_missing)
    return model.to(device).eval()


def build_dataset(ds_cfg: dict | ConfigDict):
    from mmdet3d.registry import DATASETS

    import groupexp_da.register  # noqa: F401

    return DATASETS.build(copy.deepcopy(ds_cfg))


def unpack_predictions(data_samples, undo_shift: bool = True) -> list[dict]:
    """``Det3DDataSample`` predictions → dicts of numpy arrays in the original sensor frame."""
    out = []
    for ds in data_samples:
        pred = ds.pred_instances_3d
        boxes = pred.bboxes_3d.tensor[:, :7].cpu().numpy().astype(np.float64)
        dz = float(ds.metainfo.get("z_shift", 0.0)) if undo_shift else 0.0
        boxes[:, 2] -= dz
        item = {
            "sample_idx": ds.metainfo["sample_idx"],
            "boxes": boxes,
            "scores": pred.scores_3d.cpu().numpy().astype(np.float64),
            "labels": pred.labels_3d.cpu().numpy(),
        }
        if "group_ids" in pred:
            item["group"] = pred.group_ids.cpu().numpy().astype(np.int64)
        out.append(item)
    return out


@torch.no_grad()
def predict_dataset(
    model, dataset, batch_size: int = 4, undo_shift: bool = True, progress: bool = False
) -> list[dict]:
    """Run ``model`` over ``dataset``; returns per frame ``sample_idx``, boxes (N, 7), scores.

    Boxes are moved back by the sample's ``z_shift`` (original sensor frame).
    """
    from mmengine.dataset import pseudo_collate

    out = []
    idx = range(0, len(dataset), batch_size)
    if progress:
        from tqdm import tqdm

        idx = tqdm(idx, desc="predict")
    for start in idx:
        batch = pseudo_collate(
            [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        )
        out.extend(unpack_predictions(model.test_step(batch), undo_shift))
    return out
