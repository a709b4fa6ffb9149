"""The hard synthetic preset, per-plate QC, IC50 bootstrap CIs, the linear probe and the
supervised baseline on small fixed cases."""

import numpy as np
import pandas as pd
import pytest

from spheroid_rank.data.synth_hard import HARD_DRUGS, MECHANISMS, HardWell, hard_effect
from spheroid_rank.eval.ranking import dose_response, plate_qc
from spheroid_rank.eval.stats import four_pl, z_prime


@pytest.mark.parametrize("drug", sorted(HARD_DRUGS))
def test_hard_mechanisms_only_shrink_changes_size(drug):
    eff, mech = hard_effect((drug,), (3.0,))
    assert set(mech) == set(MECHANISMS) and eff == pytest.approx(HARD_DRUGS[drug].efficacy(3.0))
    treated = HardWell(np.random.default_rng(0), 64, eff, mech, edge=False)
    untreated = HardWell(np.random.default_rng(0), 64, 0.0, hard_effect((), ())[1], edge=False)
    ratio = treated.radius(10, 7, 10) / untreated.radius(10, 7, 10)
    assert ratio == pytest.approx(1 - 0.45 * eff * mech["shrink"])
    if mech["shrink"] == 0:
        assert ratio == 1.0  # size-preserving mechanism
        img_t = treated.render(10, 7, 10, 0.75, np.ones((64, 64)))
        img_u = untreated.render(10, 7, 10, 0.75, np.ones((64, 64)))
        diff = np.abs(img_t - img_u)
        assert diff.mean() > 0.002 and diff.max() > 0.04  # ...that still changes the image


def test_hard_experiment_writes_truth_and_ic50s(tmp_path):
    from spheroid_rank.data.synth import make_synthetic_experiment

    truth = make_synthetic_experiment(
        tmp_path, seed=0, n_plates=1, days=(7, 10), size=48, preset="hard"
    )
    assert len(truth) == 16 and truth["true_efficacy"].is_monotonic_decreasing
    assert set(truth["mechanism"]) == {
        "none",
        "shrink",
        "core",
        "rim",
        "halo",
        "pale",
        "shrink/core",
    }
    drugs = pd.read_csv(tmp_path / "drugs.csv")
    assert dict(zip(drugs["drug"], drugs["ic50"])) == {d: x.ic50 for d, x in HARD_DRUGS.items()}
    lay = pd.read_csv(tmp_path / "layout.csv")
    assert len(lay) == 60 and (lay["group"] == "untreated").sum() == 14
    assert len(list((tmp_path / "plate_1" / "day_10").glob("*.png"))) == 60


def _plate_wells(plate, gap, sd, rng):
    rows = [(plate, "untreated", "untreated", v) for v in rng.normal(1.0, sd, 8)]
    rows += [(plate, "single_dose", "R (single dose)", v) for v in rng.normal(1 + gap, sd, 4)]
    return rows


def test_plate_qc_pass_fail_hand_computed():
    rng = np.random.default_rng(0)
    rows = _plate_wells("1", 10.0, 0.3, rng) + _plate_wells("2", 1.0, 0.5, rng)
    w = pd.DataFrame(rows, columns=["plate", "group", "condition", "score"])
    qc = plate_qc(w, threshold=0.5)
    for plate in ("1", "2"):
        g = w[w["plate"] == plate]
        z = z_prime(
            g.loc[g["group"] == "single_dose", "score"], g.loc[g["group"] == "untreated", "score"]
        )
        assert qc.loc[qc["plate"] == plate, "z_prime"].iloc[0] == pytest.approx(z)
    assert list(qc["qc_pass"]) == [True, False]
    assert list(plate_qc(w, threshold=-100)["qc_pass"]) == [True, True]


def test_ic50_bootstrap_ci_brackets_the_fit():
    rng = np.random.default_rng(1)
    conc = np.repeat([0.1, 0.3, 1.0, 3.0, 10.0], 4)
    rows = [
        ("screening", "A", str(c), f"A @ {c}", four_pl(c, 1.0, 5.0, 1.0, 1.5) + rng.normal(0, 0.2))
        for c in conc
    ]
    rows += [("untreated", "", "", "untreated", 1.0 + rng.normal(0, 0.2)) for _ in range(8)]
    w = pd.DataFrame(rows, columns=["group", "drug", "concentration", "condition", "score"])
    f = dose_response(w, n_boot=100, seed=0).iloc[0]
    assert f["ic50_ci_low"] < f["ic50"] < f["ic50_ci_high"]
    assert 0.3 < f["ic50_ci_low"] and f["ic50_ci_high"] < 3.0  # true IC50 1.0
    assert f["n_boot_ok"] >= 90


def test_rank_experiment_flags_or_excludes_failing_plates(synth_dir, tmp_path):
    from spheroid_rank.data.metadata import load_experiment
    from spheroid_rank.engine.rank import rank_experiment

    meta = load_experiment(synth_dir)
    emb = np.random.default_rng(0).normal(size=(len(meta), 4)).astype(np.float32)
    s = rank_experiment(meta, emb, tmp_path / "r", n_boot=50, qc_threshold=5.0)
    assert s["plates_failing_qc"] == ["1"] and s["plates_excluded"] == []
    r = pd.read_csv(tmp_path / "r" / "ranking.csv")
    assert r["qc_failed_wells"].sum() == r["n_wells"].sum() == 60
    qc = pd.read_csv(tmp_path / "r" / "plate_qc.csv")
    assert list(qc.columns) == ["plate", "n_negative", "n_positive", "z_prime", "qc_pass"]
    assert "per-plate QC" in (tmp_path / "r" / "report.html").read_text()
    with pytest.raises(ValueError, match="every plate fails QC"):
        rank_experiment(meta, emb, tmp_path / "x", n_boot=50, qc_threshold=5.0, qc_action="exclude")


def _toy_groups(n_wells=12, seed=0):
    rows = []
    for g in ("untreated", "single_dose", "screening"):
        for i in range(n_wells):
            for day in (8, 9):
                rows.append({"plate": "1", "well": f"{g[:2]}{i:02d}", "day": day, "group": g})
    return pd.DataFrame(rows)


def test_linear_probe_accuracy_separable_vs_noise():
    from spheroid_rank.eval.probe import linear_probe

    meta = _toy_groups()
    rng = np.random.default_rng(0)
    y = meta["group"].map({"untreated": 0, "single_dose": 1, "screening": 2}).to_numpy()
    good = np.eye(3)[y] * 3 + rng.normal(0, 0.3, (len(meta), 3))
    noise = rng.normal(size=(len(meta), 3))
    pg = linear_probe(meta, good.astype(np.float32), shots=(10, None))
    pn = linear_probe(meta, noise.astype(np.float32), shots=(10, None))
    assert list(pg["per_class"]) == [10, "all"] and (pg["accuracy"] == 1.0).all()
    assert (pn["accuracy"] < 0.7).all()


def test_supervised_baseline_learns_disk_sizes(tmp_path):
    from skimage import draw

    from spheroid_rank.data.io import save_gray
    from spheroid_rank.engine.supervised import supervised_baseline

    meta = _toy_groups(n_wells=10)
    radius = {"untreated": 12, "single_dose": 4, "screening": 8}
    rng = np.random.default_rng(0)
    paths = []
    for i, r in meta.iterrows():
        img = np.full((40, 40), 0.8) + rng.normal(0, 0.02, (40, 40))
        rr, cc = draw.disk(
            (20 + rng.integers(-2, 3), 20 + rng.integers(-2, 3)),
            radius[r["group"]] + rng.uniform(-1, 1),
            shape=img.shape,
        )
        img[rr, cc] = 0.3
        paths.append(str(tmp_path / f"{i}.png"))
        save_gray(paths[-1], img)
    meta["path"] = paths
    res = supervised_baseline(
        meta,
        backbone="spheroid_cnn_small",
        img_size=32,
        epochs=12,
        batch_size=8,
        seed=0,
        accelerator="cpu",
    )
    assert res["accuracy"] >= 0.9 and res["balanced_accuracy"] >= 0.9
