"""Embedding evaluation: linear probe with 10/20/30/all examples per class, kNN accuracy.

Classes are the experimental groups {untreated, single_dose, screening}. Images of days
after the drug day are used; train/test split is by well so one spheroid never sits on
both sides.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from spheroid_rank.data.metadata import GROUPS, probe_split


def _subsample(
    labels: np.ndarray, idx: np.ndarray, n: int | None, rng: np.random.Generator
) -> np.ndarray:
    if n is None:
        return idx
    keep = [rng.permutation(idx[labels[idx] == c])[:n] for c in np.unique(labels[idx])]
    return np.concatenate(keep)


def linear_probe(
    meta: pd.DataFrame, emb: np.ndarray, shots=(10, 20, 30, None), min_day: int = 8, seed: int = 0
) -> pd.DataFrame:
    """Logistic-regression accuracy for each number of training examples per class."""
    y = meta["group"].map({g: i for i, g in enumerate(GROUPS)}).to_numpy()
    tr, te = probe_split(meta, min_day, seed=seed)
    rng = np.random.default_rng(seed)
    rows = []
    for n in shots:
        sub = _subsample(y, tr, n, rng)
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.5))
        clf.fit(emb[sub], y[sub])
        pred = clf.predict(emb[te])
        rows.append(
            {
                "per_class": "all" if n is None else n,
                "n_train": int(len(sub)),
                "n_test": int(len(te)),
                "accuracy": float((pred == y[te]).mean()),
                "balanced_accuracy": float(balanced_accuracy_score(y[te], pred)),
            }
        )
    return pd.DataFrame(rows)


def knn_accuracy(
    meta: pd.DataFrame, emb: np.ndarray, k: int = 5, min_day: int = 8, seed: int = 0
) -> dict[str, float]:
    """Cosine kNN accuracy on the same well-level split."""
    y = meta["group"].to_numpy()
    tr, te = probe_split(meta, min_day, seed=seed)
    clf = KNeighborsClassifier(n_neighbors=min(k, len(tr)), metric="cosine").fit(emb[tr], y[tr])
    pred = clf.predict(emb[te])
    return {
        "k": k,
        "accuracy": float((pred == y[te]).mean()),
        "balanced_accuracy": float(balanced_accuracy_score(y[te], pred)),
    }


def evaluate_embeddings(
    embeddings: str | Path,
    out: str | Path | None = None,
    min_day: int = 8,
    seed: int = 0,
    baseline: bool = False,
    baseline_backbone: str = "resnet18",
    epochs: int = 10,
) -> dict:
    """The ``evaluate`` command: linear probe, kNN and (optionally) the supervised baseline on
    the images named in an embeddings CSV. Writes ``out`` (JSON) and ``out``.probe.csv."""
    from spheroid_rank.data.io import read_embeddings, write_csv, write_json

    meta, emb = read_embeddings(embeddings)
    probe = linear_probe(meta, emb, min_day=min_day, seed=seed)
    result: dict = {
        "linear_probe": probe.to_dict("records"),
        "knn": knn_accuracy(meta, emb, min_day=min_day, seed=seed),
    }
    if baseline:
        from spheroid_rank.engine.supervised import supervised_baseline

        result["supervised_baseline"] = supervised_baseline(
            meta, backbone=baseline_backbone, epochs=epochs, min_day=min_day, seed=seed
        )
    if out:
        write_json(out, result)
        write_csv(Path(out).with_suffix(".probe.csv"), probe)
    return result
