"""The ranking step: well scores -> condition ranking -> tables and report (``rank``, ``demo``)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from spheroid_rank.data.io import read_embeddings, read_table, write_csv, write_json
from spheroid_rank.data.metadata import attach_truth
from spheroid_rank.engine.config import ScoreConfig
from spheroid_rank.eval import report as rep
from spheroid_rank.eval.morph_features import morphology_features
from spheroid_rank.eval.ranking import (
    control_zprime,
    dose_response,
    plate_qc,
    rank_conditions,
    truth_spearman,
)
from spheroid_rank.eval.scores import score_wells

log = logging.getLogger(__name__)
QC_ACTIONS = ("flag", "exclude")


def rank_experiment(
    meta: pd.DataFrame,
    emb: np.ndarray,
    out: str | Path,
    cfg: ScoreConfig | None = None,
    morph: pd.DataFrame | None = None,
    positive: str | None = None,
    n_boot: int = 2000,
    title: str = "spheroid-rank report",
    qc_threshold: float = 0.5,
    qc_action: str = "flag",
) -> dict:
    """Score wells, rank conditions and write ``ranking.csv``, ``well_scores.csv``,
    ``dose_response.csv``, ``plate_qc.csv``, ``ranking_morphology.csv`` (if ``morph``),
    ``summary.json`` and ``report.html`` into ``out``. Returns the summary dictionary.

    Per-plate QC: Z' of untreated vs positive-control wells on each plate; a plate passes
    with Z' >= ``qc_threshold``. ``qc_action="flag"`` keeps failing plates and counts their
    wells per condition (``qc_failed_wells`` in ``ranking.csv``); ``"exclude"`` re-scores
    without the images of failing plates.
    """
    if qc_action not in QC_ACTIONS:
        raise ValueError(f"qc_action must be one of {QC_ACTIONS}, got {qc_action!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = cfg or ScoreConfig()
    wells = score_wells(meta, emb, cfg)
    qc = plate_qc(wells, positive, qc_threshold)
    failed = set(qc.loc[~qc["qc_pass"], "plate"])
    if qc_action == "exclude" and failed:
        keep = ~meta["plate"].astype(str).isin(failed).to_numpy()
        if not keep.any():
            raise ValueError(f"every plate fails QC (Z' < {qc_threshold}): nothing to rank")
        log.warning("excluding plate(s) %s: Z' below %s", sorted(failed), qc_threshold)
        meta, emb = meta[keep].reset_index(drop=True), emb[keep]
        wells = score_wells(meta, emb, cfg)
    ranking = rank_conditions(wells, n_boot=n_boot, seed=cfg.seed)
    bad = wells["plate"].astype(str).isin(failed)
    ranking["qc_failed_wells"] = [
        int((bad & (wells["condition"] == c)).sum()) for c in ranking["condition"]
    ]
    fits = dose_response(wells, n_boot=min(n_boot, 200), seed=cfg.seed)
    summary: dict = {
        "wells_scored": int(len(wells)),
        "conditions": int(len(ranking)),
        "temporal_model": cfg.model,
        "metric": cfg.metric,
        "history_days": list(cfg.history),
        "target_day": cfg.target,
        "z_prime": round(control_zprime(wells, positive), 4),
        "spearman_vs_truth": round(truth_spearman(ranking), 4),
        "qc_threshold": qc_threshold,
        "qc_action": qc_action,
        "plate_z_prime": {p: round(float(z), 4) for p, z in zip(qc["plate"], qc["z_prime"])},
        "plates_failing_qc": sorted(failed),
        "plates_excluded": sorted(failed) if qc_action == "exclude" else [],
    }
    write_csv(out / "well_scores.csv", wells)
    write_csv(out / "plate_qc.csv", qc)
    write_csv(out / "ranking.csv", ranking)
    write_csv(out / "dose_response.csv", fits)
    tables = {
        "per-plate QC (Z' untreated vs positive control)": qc,
        "ranking (embeddings)": ranking,
        "dose-response fits (IC50 with bootstrap CI)": fits,
    }
    figures = {
        "plate_heatmaps": rep.fig_plate_heatmaps(wells),
        "condition_scores": rep.fig_distributions(wells, ranking, "SSL-embedding ranking"),
        "embedding_projection": rep.fig_projection(meta, emb, cfg.target),
        "dose_response": rep.fig_dose_response(wells, fits),
        "examples": rep.fig_examples(meta, ranking, cfg.target),
    }
    if morph is not None:
        m_meta = meta[["plate", "well", "day"]].merge(
            morph, on=["plate", "well", "day"], how="left", validate="one_to_one"
        )
        if m_meta["area"].isna().any():
            raise ValueError("morphology table lacks rows for some images of the experiment")
        mf = morphology_features(m_meta)
        m_cfg = ScoreConfig(
            model="linear",
            metric=cfg.metric,
            history=cfg.history,
            target=cfg.target,
            pca_dim=0,
            folds=cfg.folds,
            seed=cfg.seed,
        )
        m_wells = score_wells(meta, mf, m_cfg)
        m_rank = rank_conditions(m_wells, n_boot=n_boot, seed=cfg.seed)
        write_csv(out / "ranking_morphology.csv", m_rank)
        summary["morphology_z_prime"] = round(control_zprime(m_wells, positive), 4)
        summary["morphology_spearman_vs_truth"] = round(truth_spearman(m_rank), 4)
        tables["ranking (morphology only)"] = m_rank
        figures["condition_scores_morphology"] = rep.fig_distributions(
            m_wells, m_rank, "morphology-only ranking"
        )
    rep.write_report(out, title, summary, tables, figures)
    write_json(out / "summary.json", summary)
    return summary


def rank_files(
    embeddings: str | Path,
    out: str | Path,
    cfg: ScoreConfig | None = None,
    morphology: str | Path | None = None,
    truth_from: str | Path | None = None,
    positive: str | None = None,
    **kwargs,
) -> dict:
    """:func:`rank_experiment` on an embeddings CSV (and optional morphology CSV)."""
    meta, emb = read_embeddings(embeddings)
    if truth_from:
        meta = attach_truth(meta, truth_from)
    morph = read_table(morphology, "morphology") if morphology else None
    return rank_experiment(meta, emb, out, cfg, morph, positive, **kwargs)
