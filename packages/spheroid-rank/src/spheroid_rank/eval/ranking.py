"""Per-condition ranking, controls and dose-response from per-well scores."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spheroid_rank.eval.stats import bootstrap_median_ci, fit_four_pl, spearman, z_prime, zscore

RANK_COLS = ["condition", "n_wells", "score_median", "ci_low", "ci_high", "rank"]


def rank_conditions(wells: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """One row per condition, rank 1 = largest median score = most effective.

    Columns: condition, n_wells, score_median, ci_low, ci_high, rank, group, z_score
    (median vs untreated wells) and true_efficacy when the wells carry it.
    """
    unt = wells.loc[wells["group"] == "untreated", "score"].to_numpy()
    rows = []
    for cond, g in wells.groupby("condition", sort=False):
        med, lo, hi = bootstrap_median_ci(g["score"], n_boot, seed=seed)
        row = {
            "condition": cond,
            "n_wells": len(g),
            "score_median": med,
            "ci_low": lo,
            "ci_high": hi,
            "group": g["group"].iloc[0],
            "z_score": float(zscore([med], unt)[0]) if len(unt) else np.nan,
        }
        if "true_efficacy" in g.columns:
            row["true_efficacy"] = float(pd.to_numeric(g["true_efficacy"]).mean())
        rows.append(row)
    out = pd.DataFrame(rows).sort_values("score_median", ascending=False, kind="stable")
    out["rank"] = np.arange(1, len(out) + 1)
    front = RANK_COLS + ["group", "z_score"]
    return out[front + [c for c in out.columns if c not in front]].reset_index(drop=True)


def control_zprime(wells: pd.DataFrame, positive: str | None = None) -> float:
    """Z'-factor of the score: untreated wells vs the positive control.

    ``positive`` is a condition name; by default all ``single_dose`` wells.
    """
    neg = wells.loc[wells["group"] == "untreated", "score"]
    pos = (
        wells.loc[wells["condition"] == positive, "score"]
        if positive
        else wells.loc[wells["group"] == "single_dose", "score"]
    )
    if len(pos) < 2 or len(neg) < 2:
        return float("nan")
    return z_prime(pos, neg)


def dose_response(wells: pd.DataFrame) -> pd.DataFrame:
    """4PL fit of score vs concentration for every single drug tested at >= 3 concentrations.

    Untreated wells enter every curve at a tiny concentration (1/100 of the lowest dose).
    """
    single = wells[
        (wells["group"] != "untreated")
        & ~wells["drug"].astype(str).str.contains(r"\+")
        & (wells["drug"].astype(str) != "")
    ]
    unt = wells[wells["group"] == "untreated"]
    rows = []
    for drug, g in single.groupby("drug"):
        conc = pd.to_numeric(g["concentration"], errors="coerce")
        if conc.nunique() < 3:
            continue
        c0 = float(conc.min()) / 100
        x = np.concatenate([conc.to_numpy(float), np.full(len(unt), c0)])
        y = np.concatenate([g["score"].to_numpy(float), unt["score"].to_numpy(float)])
        fit = fit_four_pl(x, y)
        rows.append({"drug": drug, "n_concentrations": int(conc.nunique()), **fit})
    return pd.DataFrame(rows)


def truth_spearman(ranking: pd.DataFrame) -> float:
    """Spearman correlation of condition score medians with the true efficacy."""
    if "true_efficacy" not in ranking.columns:
        return float("nan")
    return spearman(ranking["score_median"], ranking["true_efficacy"])
