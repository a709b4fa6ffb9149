"""Embeddings of the images of a metadata table (reads the image files, then engine/infer)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from torch.utils.data import DataLoader

from spheroid_rank.data.dataset import SpheroidImages
from spheroid_rank.data.transforms import eval_transform
from spheroid_rank.engine.config import SSLConfig
from spheroid_rank.engine.infer import embed_batches
from spheroid_rank.models.ssl import SSLMethod

META_COLS = [
    "plate",
    "well",
    "day",
    "group",
    "drug",
    "concentration",
    "condition",
    "path",
    "true_efficacy",
]


def extract(
    model: SSLMethod,
    table: pd.DataFrame,
    cfg: SSLConfig,
    device: str = "cpu",
    batch_size: int = 128,
    workers: int = 0,
) -> np.ndarray:
    """(N, D) float32 embeddings of the images of ``table`` in table order."""
    ds = SpheroidImages(
        table, cfg.load_size, cfg.focal, eval_transform(cfg.img_size, cfg.in_chans), cache=False
    )
    dl = DataLoader(
        ds, batch_size=batch_size, num_workers=workers, pin_memory=device.startswith("cuda")
    )
    return embed_batches(model, (x for x, _ in dl), device)


def embeddings_frame(table: pd.DataFrame, emb: np.ndarray) -> pd.DataFrame:
    """Metadata columns followed by ``e0..e{D-1}``."""
    meta = table[[c for c in META_COLS if c in table.columns]].reset_index(drop=True)
    cols = pd.DataFrame(emb, columns=[f"e{i}" for i in range(emb.shape[1])])
    return pd.concat([meta, cols], axis=1)
