"""The ``hard`` synthetic preset: drug effects that size alone does not reveal, plus nuisances.

Five drugs act through different mechanisms (weights in :data:`HARD_DRUGS`); only ``S``
shrinks the spheroid, the others leave its size within a few percent of untreated growth:

=========  ===============================================================================
mechanism  rendering (``p`` = dose efficacy x (time since dosing)^1.5, 0..~0.9)
=========  ===============================================================================
shrink     radius x (1 - 0.45 p), optical density + 0.10 p
core       dark necrotic core: radius fraction grows from the untreated value by 0.55 p,
           extra optical density 0.30 (untreated spheroids already carry a small core)
rim        outer 30 % of the radius loosens: density x (1 - 0.7 p x hole noise), surface
           roughness (harmonics 6-14, amplitude 0.07 p) and up to 12 p fragments at the edge
halo       up to 90 p shed dead cells (dark dots, radius 0.7-1.3 px) within 1.0-1.7 radii
pale       optical density x (1 - 0.55 p) (a lighter, more transparent spheroid)
=========  ===============================================================================

Nuisances (drawn independently of the treatment):

- plate: background level U(0.62, 0.85), gain U(0.85, 1.15), a linear illumination gradient
  of amplitude U(0.08, 0.22) in a random direction across the plate, and vignetting of depth
  U(0.10, 0.35) inside every image;
- well: focus blur sigma U(0.3, 2.2) px (+ N(0, 0.2) per day), debris specks at a rate drawn
  from Gamma(1, 4) per image (radius 0.8-2.5 px), optical density U(0.42, 0.60), texture;
- edge effect: wells on the border of the inner 60 (rows B/G, columns 2/11) grow 20 % slower
  and are 4 % darker (evaporation);
- biology: untreated growth rate lognormal (median 0.045 per day, sigma 0.3), start radius
  U(0.15, 0.20) x image size, baseline necrotic core fraction U(0, 0.25) growing with size.

Ground truth: ``true_efficacy`` is the Hill-curve efficacy of the treatment (Bliss
independence for combinations), the same definition as the ``easy`` preset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

MECHANISMS = ("shrink", "core", "rim", "halo", "pale")


@dataclass(frozen=True)
class HardDrug:
    """Hill-curve efficacy and mechanism weights of one drug."""

    name: str
    ic50: float
    emax: float
    hill: float
    mech: dict

    def efficacy(self, conc: float) -> float:
        if conc <= 0:
            return 0.0
        return self.emax * conc**self.hill / (conc**self.hill + self.ic50**self.hill)


HARD_DRUGS = {
    "S": HardDrug("S", 1.0, 0.90, 1.5, {"shrink": 1.0}),
    "N": HardDrug("N", 0.8, 0.90, 1.5, {"core": 1.0}),
    "F": HardDrug("F", 1.2, 0.85, 2.0, {"rim": 1.0}),
    "H": HardDrug("H", 0.5, 0.80, 1.2, {"halo": 1.0}),
    "D": HardDrug("D", 1.0, 0.75, 1.0, {"pale": 1.0}),
    "R": HardDrug("R", 0.5, 0.85, 1.2, {"shrink": 0.5, "core": 0.5}),
}

# 14 untreated + 4 single-dose + 14 screening conditions x 3 wells = 60 inner wells
HARD_DESIGN: list[tuple[str, tuple[str, ...], tuple[float, ...], int]] = [
    ("untreated", (), (), 14),
    ("single_dose", ("R",), (1.0,), 4),
    *[
        ("screening", (d,), (c,), 3)
        for d, cs in (
            ("S", (0.3, 1.0, 3.0)),
            ("N", (0.3, 1.0, 3.0)),
            ("F", (0.4, 1.2, 4.0)),
            ("H", (0.2, 0.6, 2.0)),
        )
        for c in cs
    ],
    ("screening", ("D",), (0.5,), 3),
    ("screening", ("D",), (3.0,), 3),
]


def hard_effect(drugs: tuple[str, ...], concs: tuple[float, ...]) -> tuple[float, dict]:
    """(efficacy, mechanism weights) of a treatment, Bliss independence."""
    if not drugs:
        return 0.0, dict.fromkeys(MECHANISMS, 0.0)
    effs = [HARD_DRUGS[d].efficacy(c) for d, c in zip(drugs, concs)]
    total = 1.0 - float(np.prod([1.0 - e for e in effs]))
    w = np.asarray(effs) + 1e-9
    mech = {
        m: float(np.average([HARD_DRUGS[d].mech.get(m, 0.0) for d in drugs], weights=w))
        for m in MECHANISMS
    }
    return total, mech


def _noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    n = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma)
    return n / (n.std() + 1e-9)


def _disk(yy, xx, cy, cx, r) -> np.ndarray:
    return np.clip(r - np.hypot(yy - cy, xx - cx) + 0.5, 0.0, 1.0)


class HardWell:
    """Per-well draws (biology, nuisances, treatment) and the per-day renderer."""

    def __init__(
        self, rng: np.random.Generator, size: int, eff: float, mech: dict, edge: bool
    ) -> None:
        self.rng, self.size, self.eff, self.mech = rng, size, eff, mech
        self.r0 = size * rng.uniform(0.15, 0.20)
        self.growth = 0.045 * rng.lognormal(0, 0.3) * (0.8 if edge else 1.0)
        self.edge_dark = 0.96 if edge else 1.0
        self.od = rng.uniform(0.42, 0.60)
        self.core0 = rng.uniform(0.0, 0.25)
        self.blur = rng.uniform(0.3, 2.2)
        self.debris_rate = rng.gamma(1.0, 4.0)
        self.tex = _noise(rng, size, 1.2)
        self.holes = _noise(rng, size, 0.8)
        self.harm = np.stack([rng.uniform(0, 0.02, 5), rng.uniform(0, 2 * np.pi, 5)], 1)
        self.rough = np.stack([rng.uniform(0.5, 1.0, 9), rng.uniform(0, 2 * np.pi, 9)], 1)
        self.frag = rng.uniform(0, 1, (12, 3))  # angle, distance, size of rim fragments
        self.halo = rng.uniform(0, 1, (90, 3))  # angle, distance, size of shed cells

    def damage(self, day: int, drug_day: int, end: int) -> float:
        """``p``: efficacy x (fraction of the treatment time elapsed)^1.5."""
        t = np.clip((day - drug_day) / max(end - drug_day, 1), 0, 1)
        return float(self.eff * t**1.5)

    def radius(self, day: int, drug_day: int, end: int) -> float:
        """Mean radius (px) before outline harmonics; only the shrink mechanism changes it."""
        p = self.damage(day, drug_day, end)
        return self.r0 * (1 + self.growth * (day - 1)) * (1 - 0.45 * p * self.mech["shrink"])

    def render(
        self, day: int, drug_day: int, end: int, background: float, light: np.ndarray
    ) -> np.ndarray:
        """One image in [0, 1]; ``light`` is the illumination field of this well's position."""
        rng, size, m = self.rng, self.size, self.mech
        p = self.damage(day, drug_day, end)
        radius = self.radius(day, drug_day, end)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        c = (size - 1) / 2.0
        dist, theta = np.hypot(yy - c, xx - c), np.arctan2(yy - c, xx - c)
        k = np.arange(1, 6)[:, None, None]
        shape = (self.harm[:, 0:1, None] * np.cos(k * theta + self.harm[:, 1:2, None])).sum(0)
        kr = np.arange(6, 15)[:, None, None]
        rough = (self.rough[:, 0:1, None] * np.cos(kr * theta + self.rough[:, 1:2, None])).sum(0)
        rad = radius * (1 + shape + 0.07 * p * m["rim"] * rough / 3.0)
        inside = np.clip(rad - dist + 0.5, 0.0, 1.0)
        rr = np.clip(dist / np.maximum(rad, 1), 0, 1)
        thick = 0.6 + 0.4 * np.sqrt(1 - rr**2)  # a sphere is thickest in the middle
        od = self.od * (1 + 0.12 * self.tex) * thick
        od = od * (1 - 0.55 * p * m["pale"]) + 0.10 * p * m["shrink"]
        rim = np.clip((rr - 0.7) / 0.3, 0, 1)  # 0 inside, 1 at the outline
        loose = 0.7 * p * m["rim"] * np.clip(0.6 + 0.5 * self.holes, 0, 1) * rim
        od = od * (1 - loose)
        core_frac = min(
            self.core0 * (1 + 0.6 * self.growth * (day - 1)) + 0.55 * p * m["core"], 0.85
        )
        core = np.clip((core_frac * rad - dist) / 1.5 + 0.5, 0, 1) if core_frac > 0 else 0.0
        od = od + 0.30 * core
        absorb = od * inside
        n_frag = int(round(12 * p * m["rim"]))
        for a, dd, s in self.frag[:n_frag]:
            ang, r_f = a * 2 * np.pi, radius * (1.0 + 0.15 * dd)
            blob = _disk(
                yy, xx, c + np.sin(ang) * r_f, c + np.cos(ang) * r_f, radius * (0.05 + 0.06 * s)
            )
            absorb = np.maximum(absorb, 0.5 * self.od * blob)
        n_halo = int(round(90 * p * m["halo"]))
        for a, dd, s in self.halo[:n_halo]:
            ang, r_h = a * 2 * np.pi, radius * (1.0 + 0.7 * dd)
            dot = _disk(yy, xx, c + np.sin(ang) * r_h, c + np.cos(ang) * r_h, 0.7 + 0.6 * s)
            absorb = np.maximum(absorb, 0.55 * dot)
        for _ in range(int(rng.poisson(self.debris_rate))):
            sy, sx = rng.uniform(0, size, 2)
            absorb = np.maximum(
                absorb, rng.uniform(0.3, 0.7) * _disk(yy, xx, sy, sx, rng.uniform(0.8, 2.5))
            )
        img = background * self.edge_dark * (1 - np.clip(absorb, 0, 0.95)) * light
        blur = max(self.blur + rng.normal(0, 0.2), 0.0)
        if blur > 0:
            img = ndimage.gaussian_filter(img, blur)
        img = img + rng.normal(0, 0.012, img.shape)
        return np.clip(img, 0, 1).astype(np.float32)


class HardPlate:
    """Per-plate nuisances: background, gain, illumination gradient, vignetting."""

    def __init__(self, rng: np.random.Generator, size: int) -> None:
        self.background = rng.uniform(0.62, 0.85)
        self.gain = rng.uniform(0.85, 1.15)
        amp, ang = rng.uniform(0.08, 0.22), rng.uniform(0, 2 * np.pi)
        self.grad = (amp * np.sin(ang), amp * np.cos(ang))
        yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1) - 0.5
        self.vignette = 1 - rng.uniform(0.10, 0.35) * 2 * (yy**2 + xx**2)

    def light(self, row: int, col: int) -> np.ndarray:
        """Illumination field of the well at (row, col) (0-based on the 8 x 12 plate)."""
        g = 1 + self.grad[0] * (row - 3.5) / 3.5 + self.grad[1] * (col - 5.5) / 5.5
        return self.gain * g * self.vignette
