"""Per-well deviation scores from a temporal model trained on untreated wells only."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.covariance import LedoitWolf
from sklearn.decomposition import PCA
from sklearn.model_selection import KFold

from spheroid_rank.engine.config import METRICS, ScoreConfig
from spheroid_rank.models.temporal import build_temporal

log = logging.getLogger(__name__)
__all__ = ["METRICS", "ScoreConfig", "build_sequences", "score_wells"]
WELL_COLS = ["plate", "well", "group", "drug", "concentration", "condition"]


def build_sequences(
    meta: pd.DataFrame, emb: np.ndarray, history: tuple[int, ...], target: int
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Per-well history (N, T, D) and target (N, D); wells missing a day are dropped (logged)."""
    m = meta.reset_index(drop=True).copy()
    m["_i"] = np.arange(len(m))
    wells, xs, ys = [], [], []
    extra = [c for c in ("true_efficacy",) if c in m.columns]
    for (plate, well), g in m.groupby(["plate", "well"], sort=True):
        idx = dict(zip(g["day"].astype(int), g["_i"]))
        missing = [d for d in (*history, target) if d not in idx]
        if missing:
            log.warning(
                "plate %s well %s: missing day(s) %s -> excluded from scoring", plate, well, missing
            )
            continue
        xs.append(emb[[idx[d] for d in history]])
        ys.append(emb[idx[target]])
        first = g.iloc[0]
        wells.append({c: first[c] for c in WELL_COLS + extra if c in g.columns})
    if not wells:
        raise ValueError(f"no well has all days {history} -> {target}")
    return pd.DataFrame(wells), np.stack(xs), np.stack(ys)


def _distance(
    res: np.ndarray, pred: np.ndarray, y: np.ndarray, metric: str, prec: np.ndarray | None
) -> np.ndarray:
    if metric == "l2":
        return np.linalg.norm(res, axis=1)
    if metric == "cosine":
        num = (pred * y).sum(1)
        den = np.linalg.norm(pred, axis=1) * np.linalg.norm(y, axis=1) + 1e-12
        return 1.0 - num / den
    if metric == "mahalanobis":
        assert prec is not None
        return np.sqrt(np.einsum("nd,de,ne->n", res, prec, res).clip(0))
    raise ValueError(f"unknown metric {metric!r}; choose from {METRICS}")


def score_wells(
    meta: pd.DataFrame, emb: np.ndarray, cfg: ScoreConfig | None = None, **model_kwargs
) -> pd.DataFrame:
    """Score every well: distance between predicted and actual target-day embedding.

    The feature scaling/PCA and the temporal model are fitted on untreated wells only.
    Untreated wells are scored out-of-fold (K-fold cross-fitting) so that their scores
    are honest held-out values; treated wells use a model fitted on all untreated wells.
    The Mahalanobis covariance comes from the out-of-fold untreated residuals.
    """
    cfg = cfg or ScoreConfig()
    if cfg.metric not in METRICS:
        raise ValueError(f"unknown metric {cfg.metric!r}; choose from {METRICS}")
    untreated_img = (meta["group"] == "untreated").to_numpy()
    if not untreated_img.any():
        raise ValueError("no untreated wells: the temporal model is trained on them")
    mu = emb[untreated_img].mean(0)
    sd = emb[untreated_img].std(0) + 1e-6
    z = (emb - mu) / sd
    k = min(cfg.pca_dim, z.shape[1], int(untreated_img.sum()) - 1) if cfg.pca_dim else 0
    if k and k < z.shape[1]:
        z = PCA(k, random_state=cfg.seed).fit(z[untreated_img]).transform(z)
    wells, x, y = build_sequences(meta, z.astype(np.float32), cfg.history, cfg.target)
    unt = (wells["group"] == "untreated").to_numpy()
    n_unt = int(unt.sum())
    if n_unt < 3:
        raise ValueError(f"only {n_unt} untreated wells with all days; need at least 3")
    pred = np.zeros_like(y)
    folds = min(cfg.folds, n_unt)
    ui = np.flatnonzero(unt)
    for tr, te in KFold(folds, shuffle=True, random_state=cfg.seed).split(ui):
        mdl = build_temporal(cfg.model, seed=cfg.seed, **model_kwargs)
        mdl.fit(x[ui[tr]], y[ui[tr]])
        pred[ui[te]] = mdl.predict(x[ui[te]])
    if (~unt).any():
        mdl = build_temporal(cfg.model, seed=cfg.seed, **model_kwargs).fit(x[unt], y[unt])
        pred[~unt] = mdl.predict(x[~unt])
    res = y - pred
    prec = None
    if cfg.metric == "mahalanobis":
        prec = LedoitWolf().fit(res[unt]).precision_
    wells["score"] = _distance(res, pred, y, cfg.metric, prec)
    return wells
