import numpy as np
import pandas as pd
import pytest

from spheroid_rank.eval.ranking import control_zprime, dose_response, rank_conditions
from spheroid_rank.eval.stats import bootstrap_median_ci, fit_four_pl, four_pl, z_prime, zscore


def test_z_prime_hand_computed():
    pos = [10.0, 12.0, 14.0]  # mean 12, sd 2
    neg = [1.0, 2.0, 3.0]  # mean 2, sd 1
    assert z_prime(pos, neg) == pytest.approx(1 - 3 * 3 / 10)
    assert z_prime([5, 5.1, 4.9], [5, 5.1, 4.9]) == float("-inf")


def test_zscore_and_bootstrap():
    assert zscore([4.0], [1.0, 2.0, 3.0])[0] == pytest.approx(2.0)
    med, lo, hi = bootstrap_median_ci(np.arange(101.0), n_boot=500)
    assert med == 50 and lo < 50 < hi and hi - lo < 30
    assert bootstrap_median_ci([3.0]) == (3.0, 3.0, 3.0)


@pytest.mark.parametrize("ic50,hill", [(0.5, 1.0), (2.0, 2.0), (0.05, 0.8)])
def test_four_pl_recovers_ic50(ic50, hill):
    rng = np.random.default_rng(0)
    conc = np.repeat(np.logspace(np.log10(ic50) - 2, np.log10(ic50) + 2, 9), 3)
    resp = four_pl(conc, 0.1, 2.0, ic50, hill) + rng.normal(0, 0.02, conc.size)
    fit = fit_four_pl(conc, resp)
    assert fit["ic50"] == pytest.approx(ic50, rel=0.15)
    assert fit["hill"] == pytest.approx(hill, rel=0.2)
    assert fit["r2"] > 0.98 and fit["ok"] == 1.0


def _wells():
    rows = []
    for i in range(8):
        rows.append(("untreated", "", "", "untreated", 1.0 + 0.1 * (i % 3)))
    for c, s in ((0.1, 1.2), (1.0, 3.0), (10.0, 6.0)):
        for j in range(3):
            rows.append(("screening", "A", str(c), f"A @ {c}", s + 0.1 * j))
    for j in range(3):
        rows.append(("single_dose", "R", "1", "R (single dose)", 5.0 + 0.1 * j))
    return pd.DataFrame(rows, columns=["group", "drug", "concentration", "condition", "score"])


def test_rank_conditions_order_and_columns():
    r = rank_conditions(_wells(), n_boot=200)
    assert list(r.columns[:6]) == [
        "condition",
        "n_wells",
        "score_median",
        "ci_low",
        "ci_high",
        "rank",
    ]
    assert list(r["condition"]) == [
        "A @ 10.0",
        "R (single dose)",
        "A @ 1.0",
        "A @ 0.1",
        "untreated",
    ]
    assert list(r["rank"]) == [1, 2, 3, 4, 5]
    assert (r["ci_low"] <= r["score_median"]).all() and (r["ci_high"] >= r["score_median"]).all()
    assert r.loc[r["condition"] == "untreated", "z_score"].iloc[0] == pytest.approx(0, abs=1.0)


def test_control_zprime_and_dose_response():
    w = _wells()
    neg = w.loc[w["group"] == "untreated", "score"]
    pos = w.loc[w["group"] == "single_dose", "score"]
    assert control_zprime(w) == pytest.approx(z_prime(pos, neg))
    fits = dose_response(w)
    assert list(fits["drug"]) == ["A"] and 0.1 < fits["ic50"].iloc[0] < 10
