"""Embedding extraction with a trained (or random-init) SSL network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from spheroid_rank.data.dataset import SpheroidImages
from spheroid_rank.data.transforms import eval_transform
from spheroid_rank.engine.train import SSLConfig
from spheroid_rank.models.ssl import SSLMethod, build_method

META_COLS = ["plate", "well", "day", "group", "drug", "concentration", "condition", "path",
             "true_efficacy"]


def load_model(path: str | Path) -> tuple[SSLMethod, SSLConfig]:
    """Load ``backbone.pt`` written by :func:`train_ssl` (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file does not exist")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    cfg = SSLConfig(**blob["config"])
    model = build_method(cfg.method, backbone=cfg.backbone, in_chans=cfg.in_chans,
                         img_size=cfg.img_size, **cfg.method_kwargs)
    model.load_state_dict(blob["state_dict"])
    return model.eval(), cfg


@torch.no_grad()
def extract(model: SSLMethod, table: pd.DataFrame, cfg: SSLConfig, device: str = "cpu",
            batch_size: int = 128, workers: int = 0) -> np.ndarray:
    """(N, D) float32 embeddings of the images of ``table`` in table order."""
    ds = SpheroidImages(table, cfg.load_size, cfg.focal, eval_transform(cfg.img_size,
                                                                        cfg.in_chans), cache=False)
    dl = DataLoader(ds, batch_size=batch_size, num_workers=workers,
                    pin_memory=device.startswith("cuda"))
    model = model.to(device).eval()
    out = []
    for x, _ in dl:
        out.append(model.embed(x.to(device, non_blocking=True)).float().cpu())
    return torch.cat(out).numpy().astype(np.float32)


def embeddings_frame(table: pd.DataFrame, emb: np.ndarray) -> pd.DataFrame:
    """Metadata columns followed by ``e0..e{D-1}``."""
    meta = table[[c for c in META_COLS if c in table.columns]].reset_index(drop=True)
    cols = pd.DataFrame(emb, columns=[f"e{i}" for i in range(emb.shape[1])])
    return pd.concat([meta, cols], axis=1)


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    """Write a CSV through a temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    df.to_csv(tmp, index=False)
    tmp.replace(path)


def read_embeddings(path: str | Path) -> tuple[pd.DataFrame, np.ndarray]:
    """Inverse of :func:`embeddings_frame` from a CSV file."""
    df = pd.read_csv(path, dtype={"plate": str, "drug": str, "concentration": str},
                     keep_default_na=False)
    ecols = [c for c in df.columns if c.startswith("e") and c[1:].isdigit()]
    if not ecols:
        raise ValueError(f"{path}: no embedding columns e0..eN")
    return df.drop(columns=ecols), df[ecols].to_numpy(np.float32)
