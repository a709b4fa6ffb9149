"""HTML report with embedded matplotlib figures (also saved as PNG files)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from spheroid_rank.data.io import atomic_path, atomic_write, read_image
from spheroid_rank.data.plate import ROWS
from spheroid_rank.eval.stats import four_pl


def fig_plate_heatmaps(wells: pd.DataFrame) -> plt.Figure:
    """Score of every well on a 8x12 plate grid, one panel per plate."""
    plates = sorted(wells["plate"].astype(str).unique())
    fig, axes = plt.subplots(1, len(plates), figsize=(5.2 * len(plates), 3.6), squeeze=False)
    vmax = float(np.nanquantile(wells["score"], 0.98))
    for ax, plate in zip(axes[0], plates):
        grid = np.full((8, 12), np.nan)
        for _, w in wells[wells["plate"].astype(str) == plate].iterrows():
            r, c = ROWS.index(w["well"][0]), int(w["well"][1:]) - 1
            grid[r, c] = w["score"]
        im = ax.imshow(grid, cmap="magma", vmin=0, vmax=vmax)
        ax.set_xticks(range(12), [str(i + 1) for i in range(12)], fontsize=7)
        ax.set_yticks(range(8), list(ROWS), fontsize=7)
        ax.set_title(f"plate {plate}: deviation score")
        fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    return fig


def fig_distributions(wells: pd.DataFrame, ranking: pd.DataFrame, title: str) -> plt.Figure:
    """Per-condition well scores (dots) with median and bootstrap 95% CI, in rank order."""
    order = list(ranking["condition"])
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(order) + 1.4))
    colors = {"untreated": "tab:blue", "single_dose": "tab:orange", "screening": "tab:green"}
    for i, cond in enumerate(order):
        g = wells[wells["condition"] == cond]
        jitter = np.random.default_rng(i).uniform(-0.15, 0.15, len(g))
        ax.scatter(g["score"], i + jitter, s=12, alpha=0.7, color=colors.get(g["group"].iloc[0]))
        r = ranking.iloc[i]
        ax.plot([r["ci_low"], r["ci_high"]], [i, i], color="k", lw=2)
        ax.plot(r["score_median"], i, "k|", ms=12)
    ax.set_yticks(range(len(order)), order, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("score (higher = further from untreated growth)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def fig_projection(meta: pd.DataFrame, emb: np.ndarray, day: int) -> plt.Figure:
    """PCA of target-day embeddings coloured by group."""
    sel = (meta["day"].astype(int) == day).to_numpy()
    z = (emb[sel] - emb[sel].mean(0)) / (emb[sel].std(0) + 1e-6)
    p = PCA(2, random_state=0).fit_transform(z) if len(z) > 2 else np.zeros((len(z), 2))
    fig, ax = plt.subplots(figsize=(5, 4))
    groups = meta.loc[sel, "group"].to_numpy()
    for gname, col in (
        ("untreated", "tab:blue"),
        ("single_dose", "tab:orange"),
        ("screening", "tab:green"),
    ):
        m = groups == gname
        ax.scatter(p[m, 0], p[m, 1], s=12, color=col, label=gname, alpha=0.8)
    ax.set_title(f"embeddings, day {day} (PCA)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def fig_dose_response(wells: pd.DataFrame, fits: pd.DataFrame) -> plt.Figure | None:
    """Scores vs concentration with the fitted 4PL curves."""
    if fits.empty:
        return None
    fig, ax = plt.subplots(figsize=(5, 4))
    for i, f in fits.reset_index(drop=True).iterrows():
        g = wells[wells["drug"].astype(str) == f["drug"]]
        c = pd.to_numeric(g["concentration"], errors="coerce")
        col = f"C{i}"
        ax.scatter(c, g["score"], s=12, color=col, alpha=0.7)
        if np.isfinite(f["ic50"]):
            xs = np.logspace(np.log10(c.min() / 3), np.log10(c.max() * 3), 100)
            ax.plot(
                xs,
                four_pl(xs, f["bottom"], f["top"], f["ic50"], f["hill"]),
                color=col,
                label=f"{f['drug']}: IC50 {f['ic50']:.3g}",
            )
    ax.set_xscale("log")
    ax.set_xlabel("concentration")
    ax.set_ylabel("score")
    ax.set_title("dose-response (4PL)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def fig_examples(meta: pd.DataFrame, ranking: pd.DataFrame, day: int, n: int = 3) -> plt.Figure:
    """Target-day images of the most and least effective conditions (one well each)."""
    top = list(ranking["condition"][:n])
    bottom = list(ranking["condition"][-n:])
    fig, axes = plt.subplots(2, n, figsize=(2.4 * n, 5.2), squeeze=False)
    for row, conds, label in ((0, top, "most effective"), (1, bottom, "least effective")):
        for j, cond in enumerate(conds):
            ax = axes[row, j]
            ax.axis("off")
            sel = meta[(meta["condition"] == cond) & (meta["day"].astype(int) == day)]
            if len(sel):
                img = read_image(sel["path"].iloc[0])
                ax.imshow(img if img.ndim == 2 else img.mean(0), cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{label}\n{cond}", fontsize=8)
    fig.tight_layout()
    return fig


def _b64(fig: plt.Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return base64.b64encode(buf.getvalue()).decode()


def write_report(
    out: Path,
    title: str,
    summary: dict,
    tables: dict[str, pd.DataFrame],
    figures: dict[str, plt.Figure | None],
) -> Path:
    """``out/report.html`` (figures inline as base64 PNG) plus ``out/figures/<name>.png``."""
    out.mkdir(parents=True, exist_ok=True)
    fdir = out / "figures"
    fdir.mkdir(exist_ok=True)
    parts = [
        f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
        "padding:2px 6px}img{max-width:100%}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><ul>",
    ]
    parts += [
        f"<li><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</li>" for k, v in summary.items()
    ]
    parts.append("</ul>")
    for name, fig in figures.items():
        if fig is None:
            continue
        with atomic_path(fdir / f"{name}.png") as tmp:
            fig.savefig(tmp, dpi=90)
        parts.append(
            f"<h2>{html.escape(name.replace('_', ' '))}</h2>"
            f"<img src='data:image/png;base64,{_b64(fig)}'/>"
        )
        plt.close(fig)
    for name, df in tables.items():
        parts.append(f"<h2>{html.escape(name)}</h2>")
        parts.append(df.to_html(index=False, float_format=lambda x: f"{x:.4g}"))
    parts.append("</body></html>")
    path = out / "report.html"
    with atomic_write(path) as fh:
        fh.write("\n".join(parts))
    return path
