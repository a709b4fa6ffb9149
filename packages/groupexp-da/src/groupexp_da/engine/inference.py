"""Model building, safe checkpoint loading and batched inference on a dataset config."""

from __future__ import annotations

import copy

import numpy as np
import torch
from mmengine.config import Config, ConfigDict


def load_state_dict(path: str) -> dict:
    """Weights of an mmengine checkpoint, loaded with ``weights_only=True``."""
    import groupexp_da.register  # noqa: F401  (allow-lists mmengine's checkpoint types)

    # no ``safe_globals`` context manager here: leaving it removes the process-wide entries
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    return ckpt.get("state_dict", ckpt)


def build_model(cfg: Config, checkpoint: str | None = None, device: str = "cpu"):
    from mmdet3d.registry import MODELS
    from mmdet3d.utils import register_all_modules

    import groupexp_da.register  # noqa: F401

    register_all_modules(init_default_scope=True)
    model = MODELS.build(copy.deepcopy(cfg.model))
    if checkpoint:
        missing = model.load_state_dict(load_state_dict(checkpoint), strict=False)
        if missing.missing_keys:
            raise RuntimeError(f"{checkpoint}: missing weights {missing.missing_keys[:5]}")
    return model.to(device).eval()


def build_dataset(ds_cfg: dict | ConfigDict):
    from mmdet3d.registry import DATASETS

    import groupexp_da.register  # noqa: F401

    return DATASETS.build(copy.deepcopy(ds_cfg))


@torch.no_grad()
def predict_dataset(model, dataset, batch_size: int = 4, undo_shift: bool = True,
                    progress: bool = False) -> list[dict]:
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
        batch = pseudo_collate([dataset[i] for i in range(start, min(start + batch_size,
                                                                    len(dataset)))])
        for ds in model.test_step(batch):
            pred = ds.pred_instances_3d
            boxes = pred.bboxes_3d.tensor[:, :7].cpu().numpy().astype(np.float64)
            dz = float(ds.metainfo.get("z_shift", 0.0)) if undo_shift else 0.0
            boxes[:, 2] -= dz
            out.append({"sample_idx": ds.metainfo["sample_idx"], "boxes": boxes,
                        "scores": pred.scores_3d.cpu().numpy().astype(np.float64),
                        "labels": pred.labels_3d.cpu().numpy()})
    return out
