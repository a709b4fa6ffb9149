"""Synthetic bright-field spheroid plates with a known efficacy order.

Two presets. ``easy`` (below) encodes efficacy mostly in size; ``hard``
(:mod:`spheroid_rank.data.synth_hard`) has size-preserving mechanisms and nuisances.

``easy``: untreated spheroids grow; after the drug day, treated ones shrink and darken (drug "A"),
lose circularity and explode into debris (drug "B"), or both (reference "R", combinations),
with dose-dependent strength from a Hill curve (combinations use Bliss independence).
Plates carry an illumination gradient, random focus blur, background debris and noise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from spheroid_rank.data.io import save_gray, write_csv
from spheroid_rank.data.plate import INNER_COLS, INNER_ROWS, inner_wells, parse_well, well_index
from spheroid_rank.data.synth_hard import HARD_DESIGN, HardPlate, HardWell, hard_effect

PRESETS = ("easy", "hard")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Drug:
    """Hill-curve efficacy and the way the drug damages a spheroid."""

    name: str
    ic50: float
    emax: float
    hill: float
    shrink: float  # weight of shrink/darken damage
    explode: float  # weight of irregularity/explosion damage

    def efficacy(self, conc: float) -> float:
        if conc <= 0:
            return 0.0
        return self.emax * conc**self.hill / (conc**self.hill + self.ic50**self.hill)


DRUGS = {
    "A": Drug("A", ic50=0.6, emax=0.95, hill=1.5, shrink=1.0, explode=0.25),
    "B": Drug("B", ic50=1.5, emax=1.0, hill=2.0, shrink=0.35, explode=1.0),
    "R": Drug("R", ic50=0.5, emax=0.85, hill=1.2, shrink=0.7, explode=0.6),
}

# (group, drugs, concentrations, number of wells per plate); 16 + 4 + 10 * 4 = 60 wells
DEFAULT_DESIGN: list[tuple[str, tuple[str, ...], tuple[float, ...], int]] = [
    ("untreated", (), (), 16),
    ("single_dose", ("R",), (0.7,), 4),
    ("screening", ("A",), (0.1,), 4),
    ("screening", ("A",), (0.4,), 4),
    ("screening", ("A",), (1.0,), 4),
    ("screening", ("A",), (3.0,), 4),
    ("screening", ("B",), (0.5,), 4),
    ("screening", ("B",), (1.2,), 4),
    ("screening", ("B",), (2.5,), 4),
    ("screening", ("B",), (6.0,), 4),
    ("screening", ("A", "B"), (0.2, 0.5), 4),
    ("screening", ("A", "B"), (0.4, 1.2), 4),
]


def combined_effect(drugs: tuple[str, ...], concs: tuple[float, ...]) -> tuple[float, float, float]:
    """(efficacy, shrink weight, explode weight) of a treatment, Bliss independence."""
    if not drugs:
        return 0.0, 0.0, 0.0
    effs = [DRUGS[d].efficacy(c) for d, c in zip(drugs, concs)]
    total = 1.0 - float(np.prod([1.0 - e for e in effs]))
    w = np.asarray(effs) + 1e-9
    shrink = float(np.average([DRUGS[d].shrink for d in drugs], weights=w))
    explode = float(np.average([DRUGS[d].explode for d in drugs], weights=w))
    return total, shrink, explode


def mechanism_of(drug: str, preset: str = "easy") -> str:
    """Readable mechanism of a drug (``+`` joined for combinations; ``none`` untreated)."""
    from spheroid_rank.data.synth_hard import HARD_DRUGS

    if not drug:
        return "none"
    table = HARD_DRUGS if preset == "hard" else DRUGS
    names = []
    for d in drug.split("+"):
        x = table[d]
        mech = x.mech if preset == "hard" else {"shrink": x.shrink, "explode": x.explode}
        names.append("/".join(k for k, v in mech.items() if v >= 0.5))
    return "+".join(names)


def drug_table(preset: str = "easy") -> pd.DataFrame:
    """The generator's Hill parameters (true IC50s) and mechanism of every drug."""
    from spheroid_rank.data.synth_hard import HARD_DRUGS

    table = HARD_DRUGS if preset == "hard" else DRUGS
    return pd.DataFrame(
        [
            {
                "drug": d.name,
                "ic50": d.ic50,
                "emax": d.emax,
                "hill": d.hill,
                "mechanism": mechanism_of(d.name, preset),
            }
            for d in table.values()
        ]
    )


def _fmt(x: float) -> str:
    return f"{x:g}"


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    n = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma)
    return n / (n.std() + 1e-9)


def render_spheroid(
    size: int,
    radius: float,
    harmonics: np.ndarray,
    texture: np.ndarray,
    darkness: float,
    fragments: list[tuple[float, float, float]],
    background: float,
    gradient: np.ndarray,
    blur: float,
    rng: np.random.Generator,
    n_specks: int,
) -> np.ndarray:
    """Render one bright-field-like image in [0, 1]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c = (size - 1) / 2.0
    dy, dx = yy - c, xx - c
    dist = np.hypot(dx, dy)
    theta = np.arctan2(dy, dx)
    k = np.arange(1, len(harmonics) + 1)
    rad = radius * (
        1
        + (
            harmonics[:, 0:1, None]
            * np.cos(k[:, None, None] * theta[None] + harmonics[:, 1:2, None])
        ).sum(0)
    )
    inside = np.clip(rad - dist + 0.5, 0.0, 1.0)  # one-pixel soft edge
    for fy, fx, fr in fragments:
        inside = np.maximum(inside, np.clip(fr - np.hypot(yy - fy, xx - fx) + 0.5, 0.0, 1.0))
    halo = np.exp(-((dist - rad - 2.0) ** 2) / 4.0) * 0.08 * (radius > 1)
    body = (0.38 - darkness) + 0.06 * texture + 0.08 * np.clip(dist / np.maximum(rad, 1), 0, 1)
    img = background * (1 - inside) + body * inside + halo
    for _ in range(n_specks):
        sy, sx = rng.uniform(0, size, 2)
        sr = rng.uniform(0.8, 1.8)
        img = np.where(np.hypot(yy - sy, xx - sx) < sr, img * 0.55, img)
    img = img * gradient
    if blur > 0:
        img = ndimage.gaussian_filter(img, blur)
    img = img + rng.normal(0, 0.012, img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


def _design_table(rng: np.random.Generator, design, effect=combined_effect) -> pd.DataFrame:
    rows = []
    for group, drugs, concs, n in design:
        eff = effect(drugs, concs)[0]
        for _ in range(n):
            rows.append(
                {
                    "group": group,
                    "drug": "+".join(drugs),
                    "concentration": "+".join(_fmt(c) for c in concs),
                    "true_efficacy": round(eff, 6),
                }
            )
    wells = inner_wells()
    if len(rows) != len(wells):
        raise ValueError(f"design has {len(rows)} wells; a plate has {len(wells)} inner wells")
    order = rng.permutation(len(rows))
    lay = pd.DataFrame([rows[i] for i in order])
    lay.insert(0, "well", wells)
    return lay


def make_plate_images(
    out: Path,
    plate: str,
    layout: pd.DataFrame,
    rng: np.random.Generator,
    days: tuple[int, ...],
    size: int,
    drug_day: int,
    bits: int,
    focal_stack: bool,
) -> None:
    """Render every (well, day) image of one plate into ``out/plate_<id>/day_<d>/``."""
    gy, gx = rng.uniform(-0.12, 0.12, 2)  # plate illumination gradient
    ext = ".tif" if bits == 16 or focal_stack else ".png"
    end = max(days)
    for _, w in layout.iterrows():
        drugs = tuple(d for d in w["drug"].split("+") if d)
        concs = tuple(float(c) for c in w["concentration"].split("+") if c)
        eff, shrink, explode = combined_effect(drugs, concs)
        eff = float(np.clip(eff * rng.lognormal(0, 0.08), 0, 1))
        r_i, c_i = well_index(w["well"])
        plate_gain = 1 + gy * (r_i - 4.5) / 4.5 + gx * (c_i - 5.5) / 5.5
        r0 = size * rng.uniform(0.13, 0.16)
        growth = rng.uniform(0.035, 0.05)
        harm = np.stack([rng.uniform(0.0, 0.025, 5), rng.uniform(0, 2 * np.pi, 5)], 1)
        extra = np.stack(
            [
                rng.uniform(0.5, 1.0, 5) * [0.0, 0.10, 0.10, 0.07, 0.05],
                rng.uniform(0, 2 * np.pi, 5),
            ],
            1,
        )
        tex = _smooth_noise(rng, size, 1.5)
        frag_dirs = rng.uniform(0, 2 * np.pi, 24)
        frag_dist = rng.uniform(1.1, 2.0, 24)
        frag_size = rng.uniform(0.06, 0.16, 24)
        bg = rng.uniform(0.72, 0.8)
        yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1) - 0.5
        vignette = 1 - 0.15 * (yy**2 + xx**2)
        c = (size - 1) / 2.0
        for day in days:
            t = np.clip((day - drug_day) / max(end - drug_day, 1), 0, 1)
            p = eff * t**1.5
            base = r0 * (1 + growth * (min(day, drug_day) - 1))
            radius = base * (1 + growth * max(day - drug_day, 0) * (1 - eff))
            radius *= 1 - 0.45 * p * shrink
            boom = max(p * explode - 0.35, 0.0) / 0.65  # explosion starts at strong damage
            radius *= 1 - 0.5 * boom
            h = harm.copy()
            h[:, 0] += extra[:, 0] * p * explode
            h[:, 1] += extra[:, 1] * p * explode
            n_frag = int(round(24 * boom))
            frags = [
                (
                    c + np.sin(a) * base * dd * (1 + boom),
                    c + np.cos(a) * base * dd * (1 + boom),
                    base * s,
                )
                for a, dd, s in zip(frag_dirs[:n_frag], frag_dist[:n_frag], frag_size[:n_frag])
            ]
            darkness = 0.18 * p * shrink + 0.04 * p
            specks = int(rng.poisson(1.5 + 6 * boom))
            blur = float(rng.uniform(0.3, 1.2))
            img = render_spheroid(
                size, radius, h, tex, darkness, frags, bg, vignette * plate_gain, blur, rng, specks
            )
            ddir = out / f"plate_{plate}" / f"day_{day}"
            ddir.mkdir(parents=True, exist_ok=True)
            path = ddir / f"{w['well']}{ext}"
            if focal_stack:
                planes = [ndimage.gaussian_filter(img, s) for s in (2.0, 0.0, 1.5)]
                save_gray(path, np.stack(planes), bits=bits)
            else:
                save_gray(path, img, bits=bits)


def _treatment(w) -> tuple[tuple[str, ...], tuple[float, ...]]:
    drugs = tuple(d for d in w["drug"].split("+") if d)
    return drugs, tuple(float(c) for c in w["concentration"].split("+") if c)


def make_plate_images_hard(
    out: Path,
    plate: str,
    layout: pd.DataFrame,
    rng: np.random.Generator,
    days: tuple[int, ...],
    size: int,
    drug_day: int,
    bits: int,
) -> None:
    """Render one plate of the ``hard`` preset (see :mod:`spheroid_rank.data.synth_hard`)."""
    pl = HardPlate(rng, size)
    ext = ".tif" if bits == 16 else ".png"
    for _, w in layout.iterrows():
        eff, mech = hard_effect(*_treatment(w))
        eff = float(np.clip(eff * rng.lognormal(0, 0.08), 0, 1))
        row, col = parse_well(w["well"])
        edge = row in (INNER_ROWS[0], INNER_ROWS[-1]) or col in (INNER_COLS[0], INNER_COLS[-1])
        well = HardWell(rng, size, eff, mech, edge)
        light = pl.light(*well_index(w["well"]))
        for day in days:
            img = well.render(day, drug_day, max(days), pl.background, light)
            save_gray(out / f"plate_{plate}" / f"day_{day}" / f"{w['well']}{ext}", img, bits=bits)


def make_synthetic_experiment(
    out: str | Path,
    seed: int = 0,
    n_plates: int = 2,
    days: tuple[int, ...] = (7, 8, 9, 10),
    size: int = 96,
    drug_day: int = 7,
    bits: int = 8,
    focal_stack: bool = False,
    design=None,
    preset: str = "easy",
) -> pd.DataFrame:
    """Write a synthetic experiment (folder layout + ``layout.csv`` + ``truth.csv``).

    ``preset`` is ``easy`` (efficacy mostly in size) or ``hard`` (size-preserving mechanisms
    and nuisances; no focal stacks). Returns the per-condition truth table (condition,
    group, true_efficacy, and for ``hard`` the drug's mechanism).
    """
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    if preset == "hard" and focal_stack:
        raise ValueError("the hard preset renders single planes only (no --focal-stack)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    layouts = []
    for i in range(n_plates):
        plate = str(i + 1)
        if preset == "hard":
            lay = _design_table(rng, design or HARD_DESIGN, hard_effect)
            make_plate_images_hard(out, plate, lay, rng, tuple(days), size, drug_day, bits)
        else:
            lay = _design_table(rng, design or DEFAULT_DESIGN)
            make_plate_images(out, plate, lay, rng, tuple(days), size, drug_day, bits, focal_stack)
        lay.insert(0, "plate", plate)
        layouts.append(lay)
    layout = pd.concat(layouts, ignore_index=True)
    from spheroid_rank.data.metadata import condition_name

    layout["condition"] = [
        condition_name(g, d, c)
        for g, d, c in zip(layout["group"], layout["drug"], layout["concentration"])
    ]
    write_csv(out / "layout.csv", layout)
    truth = (
        layout.groupby("condition", sort=False)
        .agg(
            group=("group", "first"),
            drug=("drug", "first"),
            true_efficacy=("true_efficacy", "first"),
        )
        .reset_index()
        .sort_values("true_efficacy", ascending=False)
    )
    truth["mechanism"] = [mechanism_of(d, preset) for d in truth["drug"]]
    write_csv(out / "truth.csv", truth)
    write_csv(out / "drugs.csv", drug_table(preset))
    log.info(
        "synthetic experiment: %d plates x %d wells x %d days in %s", n_plates, 60, len(days), out
    )
    return truth
