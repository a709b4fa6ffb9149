import inspect

import numpy as np
import pandas as pd
import pytest

from spheroid_rank.engine.config import ScoreConfig
from spheroid_rank.eval.scores import score_wells
from spheroid_rank.models.temporal import TEMPORAL_MODELS, build_temporal


def _toy(n_unt=30, n_trt=12, d=8, seed=0):
    """Untreated embeddings drift along a fixed direction; treated ones turn away on day 10."""
    rng = np.random.default_rng(seed)
    drift = rng.normal(size=d)
    rows, emb = [], []
    for i in range(n_unt + n_trt):
        treated = i >= n_unt
        x = rng.normal(size=d)
        for day in (7, 8, 9, 10):
            e = x + drift * (day - 7) + rng.normal(0, 0.05, d)
            if treated and day == 10:
                e = e - 3 * drift + rng.normal(0, 0.5, d)
            rows.append(
                {
                    "plate": "1",
                    "well": f"W{i:03d}",
                    "day": day,
                    "drug": "X" if treated else "",
                    "concentration": "1" if treated else "",
                    "group": "screening" if treated else "untreated",
                    "condition": "X" if treated else "untreated",
                }
            )
            emb.append(e)
    return pd.DataFrame(rows), np.asarray(emb, np.float32)


def _fit_kwargs(name: str, epochs: int) -> dict:
    """Small settings for the torch-trained models (those with an ``epochs`` argument)."""
    params = inspect.signature(TEMPORAL_MODELS[name]).parameters
    return {"epochs": epochs, "hidden": 32} if "epochs" in params else {}


@pytest.mark.parametrize("name", sorted(TEMPORAL_MODELS))
def test_models_learn_untreated_dynamics(name):
    meta, emb = _toy()
    x = emb.reshape(-1, 4, 8)[:30, :3]
    y = emb.reshape(-1, 4, 8)[:30, 3]
    m = build_temporal(name, **_fit_kwargs(name, 150)).fit(x[:24], y[:24])
    err = np.mean((m.predict(x[24:]) - y[24:]) ** 2)
    naive = np.mean((x[24:, -1] - y[24:]) ** 2)
    assert err < 0.5 * naive
    if hasattr(m, "losses"):
        assert m.losses[-1] < m.losses[0]


@pytest.mark.parametrize(
    "model,metric",
    [(m, "mahalanobis") for m in sorted(TEMPORAL_MODELS)]
    + [("linear", "l2"), ("linear", "cosine")],
)
def test_heldout_untreated_score_lower_than_treated(model, metric):
    meta, emb = _toy()
    w = score_wells(
        meta,
        emb,
        ScoreConfig(model=model, metric=metric, pca_dim=0, folds=3),
        **_fit_kwargs(model, 80),
    )
    unt = w.loc[w["group"] == "untreated", "score"]
    trt = w.loc[w["group"] != "untreated", "score"]
    assert len(unt) == 30 and len(trt) == 12
    assert trt.min() > unt.median()
    assert trt.median() > unt.max() * 0.9


def test_synthetic_plate_scores(synth_dir):
    from spheroid_rank.data.metadata import load_experiment
    from spheroid_rank.eval.morph_features import morphology_features
    from spheroid_rank.eval.morphology import morphology_table

    t = load_experiment(synth_dir)
    feats = morphology_features(morphology_table(t))
    w = score_wells(t, feats, ScoreConfig(pca_dim=0, metric="mahalanobis"))
    eff = pd.to_numeric(w["true_efficacy"])
    assert w.loc[eff > 0.7, "score"].median() > 2 * w.loc[eff == 0, "score"].median()


def test_score_requires_untreated():
    meta, emb = _toy()
    meta["group"] = "screening"
    with pytest.raises(ValueError, match="untreated"):
        score_wells(meta, emb)
