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


def dose_response(
    wells: pd.DataFrame, n_boot: int = 200, seed: int = 0, level: float = 0.95
) -> pd.DataFrame:
    """4PL fit of score vs concentration for every single drug tested at >= 3 concentrations,
    with a percentile-bootstrap CI of the IC50 (``ic50_ci_low`` / ``ic50_ci_high``).

    Untreated wells enter every curve at a tiny concentration (1/100 of the lowest dose).
    The bootstrap resamples wells with replacement within each concentration (and within the
    untreated wells), refits, and skips refits that fail; ``n_boot=0`` gives no CI.
    """
    single = wells[
        (wells["group"] != "untreated")
        & ~wells["drug"].astype(str).str.contains(r"\+")
        & (wells["drug"].astype(str) != "")
    ]
    unt = wells[wells["group"] == "untreated"]
    rng = np.random.default_rng(seed)
    rows = []
    for drug, g in single.groupby("drug"):
        conc = pd.to_numeric(g["concentration"], errors="coerce")
        if conc.nunique() < 3:
            continue
        c0 = float(conc.min()) / 100
        x = np.concatenate([conc.to_numpy(float), np.full(len(unt), c0)])
        y = np.concatenate([g["score"].to_numpy(float), unt["score"].to_numpy(float)])
        fit = fit_four_pl(x, y)
        strata = [np.flatnonzero(x == c) for c in np.unique(x)]
        boots = []
        for _ in range(n_boot if np.isfinite(fit["ic50"]) else 0):
            idx = np.concatenate([rng.choice(s, s.size) for s in strata])
            b = fit_four_pl(x[idx], y[idx], start=fit, maxfev=300)["ic50"]
            if np.isfinite(b):
                boots.append(b)
        a = (1 - level) / 2
        lo, hi = np.quantile(boots, [a, 1 - a]) if len(boots) >= 10 else (np.nan, np.nan)
        rows.append(
            {
                "drug": drug,
                "n_concentrations": int(conc.nunique()),
                **fit,
                "ic50_ci_low": float(lo),
                "ic50_ci_high": float(hi),
                "n_boot_ok": len(boots),
            }
        )
    return pd.DataFrame(rows)


def plate_qc(
    wells: pd.DataFrame, positive: str | None = None, threshold: float = 0.5
) -> pd.DataFrame:
    """Z'-factor of every plate (untreated vs positive-control wells of that plate).

    Columns: plate, n_negative, n_positive, z_prime, qc_pass (Z' >= ``threshold``; a plate
    with fewer than 2 wells of either control fails with Z' = NaN).
    """
    rows = []
    for plate, g in wells.groupby(wells["plate"].astype(str), sort=True):
        neg = (g["group"] == "untreated").sum()
        pos = ((g["condition"] == positive) if positive else (g["group"] == "single_dose")).sum()
        z = control_zprime(g, positive)
        rows.append(
            {
                "plate": plate,
                "n_negative": int(neg),
                "n_positive": int(pos),
                "z_prime": z,
                "qc_pass": bool(np.isfinite(z) and z >= threshold),
            }
        )
    return pd.DataFrame(rows)


def truth_spearman(ranking: pd.DataFrame) -> float:
    """Spearman correlation of condition score medians with the true efficacy."""
    if "true_efficacy" not in ranking.columns:
        return float("nan")
    return spearman(ranking["score_median"], ranking["true_efficacy"])
