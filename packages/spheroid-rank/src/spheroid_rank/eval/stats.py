"""Statistics for screening: bootstrap CI, z-score, Z'-factor, 4PL dose-response / IC50."""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats


def bootstrap_median_ci(
    values, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(median, low, high): percentile bootstrap CI of the median."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (float("nan"),) * 3
    med = float(np.median(v))
    if v.size == 1:
        return med, med, med
    rng = np.random.default_rng(seed)
    boots = np.median(rng.choice(v, size=(n_boot, v.size), replace=True), axis=1)
    a = (1 - level) / 2
    return med, float(np.quantile(boots, a)), float(np.quantile(boots, 1 - a))


def zscore(values, reference) -> np.ndarray:
    """(values - mean(reference)) / std(reference) (ddof=1)."""
    ref = np.asarray(reference, dtype=np.float64)
    sd = ref.std(ddof=1) if ref.size > 1 else 0.0
    return (np.asarray(values, dtype=np.float64) - ref.mean()) / (sd if sd > 0 else 1.0)


def z_prime(positive, negative) -> float:
    """Z'-factor = 1 - 3 (sd_p + sd_n) / |mean_p - mean_n| (Zhang et al. 1999)."""
    p = np.asarray(positive, dtype=np.float64)
    n = np.asarray(negative, dtype=np.float64)
    gap = abs(p.mean() - n.mean())
    if gap == 0:
        return float("-inf")
    return float(1 - 3 * (p.std(ddof=1) + n.std(ddof=1)) / gap)


def four_pl(x, bottom: float, top: float, ic50: float, hill: float) -> np.ndarray:
    """4-parameter logistic: bottom + (top - bottom) / (1 + (ic50 / x) ** hill).

    Increasing in ``x`` for ``hill > 0`` (response = effect, e.g. the deviation score).
    """
    x = np.asarray(x, dtype=np.float64)
    return bottom + (top - bottom) / (1 + (ic50 / np.maximum(x, 1e-12)) ** hill)


def fit_four_pl(conc, response, start: dict | None = None, maxfev: int = 20000) -> dict[str, float]:
    """Least-squares 4PL fit (log-IC50 parameterisation); returns bottom, top, ic50, hill, r2.

    ``ok`` is 1.0 when the optimiser converged and the IC50 lies inside the tested range
    widened by a factor 10 on both sides.
    """
    c = np.asarray(conc, dtype=np.float64)
    r = np.asarray(response, dtype=np.float64)
    keep = np.isfinite(c) & np.isfinite(r) & (c > 0)
    c, r = c[keep], r[keep]
    nan = {"bottom": np.nan, "top": np.nan, "ic50": np.nan, "hill": np.nan, "r2": np.nan, "ok": 0.0}
    if np.unique(c).size < 3:
        return nan

    def f(x, b, t, logic, h):
        return four_pl(x, b, t, 10**logic, h)

    lo, hi = float(r.min()), float(r.max())
    span = max(hi - lo, 1e-9)
    p0 = [lo, hi, float(np.log10(np.median(c))), 1.0]
    if start is not None and np.isfinite(start.get("ic50", np.nan)):  # e.g. a bootstrap refit
        p0 = [start["bottom"], start["top"], float(np.log10(start["ic50"])), start["hill"]]
    bounds = (
        [lo - span, lo, np.log10(c.min()) - 2, 0.1],
        [hi, hi + 2 * span, np.log10(c.max()) + 2, 10.0],
    )
    try:
        p0 = np.clip(p0, bounds[0], bounds[1])
        popt, _ = optimize.curve_fit(f, c, r, p0=p0, bounds=bounds, maxfev=maxfev)
    except (RuntimeError, ValueError):
        return nan
    pred = f(c, *popt)
    ss_res = float(((r - pred) ** 2).sum())
    ss_tot = float(((r - r.mean()) ** 2).sum()) or 1e-12
    ic50 = float(10 ** popt[2])
    ok = float(c.min() / 10 <= ic50 <= c.max() * 10)
    return {
        "bottom": float(popt[0]),
        "top": float(popt[1]),
        "ic50": ic50,
        "hill": float(popt[3]),
        "r2": 1 - ss_res / ss_tot,
        "ok": ok,
    }


def spearman(a, b) -> float:
    """Spearman rank correlation (NaN-safe)."""
    return float(stats.spearmanr(a, b, nan_policy="omit").statistic)
