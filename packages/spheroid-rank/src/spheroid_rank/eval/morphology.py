"""Classical spheroid segmentation and shape/intensity measures."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from skimage import filters, measure, morphology, segmentation, transform

from spheroid_rank.data.io import read_image, save_rgb
from spheroid_rank.eval.shape import feret_min, work_image

log = logging.getLogger(__name__)

MEASURES = [
    "area",
    "perimeter",
    "circularity",
    "feret_max",
    "feret_min",
    "equivalent_diameter",
    "solidity",
    "mean_intensity",
    "std_intensity",
    "debris_fraction",
]


@dataclass
class Morphology:
    """Measures of one segmented spheroid (pixels, intensities in [0, 1])."""

    area: float
    perimeter: float
    circularity: float
    feret_max: float
    feret_min: float
    equivalent_diameter: float
    solidity: float
    mean_intensity: float
    std_intensity: float
    debris_fraction: float
    n_comparable: int = 1  # objects of at least half the chosen one's size (warn when > 1)


def shape_measures(mask: np.ndarray) -> dict[str, float]:
    """Area, perimeter (Crofton estimate), circularity 4*pi*A/P^2, Feret max/min,
    equivalent diameter and solidity of the largest object in ``mask``."""
    lab = measure.label(mask)
    if lab.max() == 0:
        return dict.fromkeys(MEASURES[:7], 0.0)
    props = max(measure.regionprops(lab), key=lambda p: p.area)
    obj = lab == props.label
    area = float(props.area)
    perim = float(measure.perimeter_crofton(obj, directions=4))
    circ = 4 * np.pi * area / perim**2 if perim > 0 else 0.0
    return {
        "area": area,
        "perimeter": perim,
        "circularity": float(circ),
        "feret_max": float(props.feret_diameter_max),
        "feret_min": feret_min(obj),
        "equivalent_diameter": float(props.equivalent_diameter_area),
        "solidity": float(props.solidity),
    }


def _drop_small(mask: np.ndarray, min_size: int) -> np.ndarray:
    lab, n = ndimage.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(lab.ravel())
    keep = sizes >= min_size
    keep[0] = False
    return keep[lab]


def count_comparable(lab: np.ndarray, ratio: float = 0.5) -> int:
    """Objects not touching the image border whose area is at least ``ratio`` x the largest
    such object's area (1 for a single spheroid; many for a multi-organoid field)."""
    h, w = lab.shape
    areas = [
        p.area
        for p in measure.regionprops(lab)
        if p.bbox[0] > 0 and p.bbox[1] > 0 and p.bbox[2] < h and p.bbox[3] < w
    ]
    return int(sum(a >= ratio * max(areas) for a in areas)) if areas else 0


def segment_counted(img: np.ndarray, max_side: int = 512) -> tuple[np.ndarray, np.ndarray, int]:
    """Segment the spheroid in a bright-field image.

    Returns (spheroid mask, debris mask, number of comparable objects) at the input
    resolution. The spheroid is dark and textured on a brighter background: the background
    is flattened with a large median-like blur, dark/textured pixels are thresholded (Otsu),
    fragments close to each other are merged by a closing, and the spheroid is the component
    with the highest score ``ln(area) - 3 d - 4 b`` (``d``: centroid distance from the image
    centre over the half-diagonal, ``b``: 1 when it touches the image border), i.e. the most
    central large one. Other dark components count as debris. The count is
    :func:`count_comparable` of the components (several = not a one-spheroid image).
    """
    if img.ndim == 3:
        img = img.mean(0)
    work, scale = work_image(img, max_side)
    h, w = work.shape
    sm = filters.gaussian(work, sigma=1.0)
    bg = filters.gaussian(work, sigma=max(h, w) / 6.0)
    dark = np.clip(bg - sm, 0, None)
    tex = filters.gaussian(np.abs(work - sm), sigma=2.0)
    feat = dark / (dark.std() + 1e-6) + 0.5 * tex / (tex.std() + 1e-6)
    if feat.max() - feat.min() < 1e-6:
        empty = np.zeros(img.shape, bool)
        return empty, empty, 0
    fg = feat > filters.threshold_otsu(feat)
    rad = max(1, int(round(min(h, w) / 100)))
    fg = ndimage.binary_opening(fg, morphology.disk(rad))
    merged = ndimage.binary_closing(np.pad(fg, 3 * rad), morphology.disk(3 * rad))
    merged = merged[3 * rad : -3 * rad, 3 * rad : -3 * rad]
    merged = ndimage.binary_fill_holes(merged)
    lab = measure.label(merged)
    if lab.max() == 0:
        empty = np.zeros(img.shape, bool)
        return empty, empty, 0
    cy, cx = (h - 1) / 2, (w - 1) / 2
    diag = np.hypot(h, w) / 2
    best, best_score = 0, -np.inf
    for p in measure.regionprops(lab):
        d = np.hypot(p.centroid[0] - cy, p.centroid[1] - cx) / diag
        r0, c0, r1, c1 = p.bbox
        touches = r0 == 0 or c0 == 0 or r1 == h or c1 == w  # well rim / vignette, not tissue
        score = np.log(p.area) - 3.0 * d - 4.0 * touches
        if score > best_score:
            best, best_score = p.label, score
    comp = lab == best
    sph = comp
    n_comparable = count_comparable(lab)
    # refine the outline at half the object's contrast (texture/closing widen it otherwise)
    half = 0.5 * float(np.median(dark[sph]))
    refined = ndimage.binary_fill_holes(sph & (ndimage.gaussian_filter(dark, 0.7) > half))
    rl = measure.label(refined)
    if rl.max() > 0:
        sizes = np.bincount(rl.ravel())
        sizes[0] = 0
        sph = rl == int(sizes.argmax())
    min_debris = max(2, int(0.00005 * h * w))
    debris = _drop_small(fg & ~comp, min_debris)
    if scale < 1.0:
        sph = transform.resize(sph, img.shape, order=0, anti_aliasing=False) > 0.5
        debris = transform.resize(debris, img.shape, order=0, anti_aliasing=False) > 0.5
    return sph, debris, n_comparable


def segment(img: np.ndarray, max_side: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(spheroid mask, debris mask) of :func:`segment_counted`."""
    return segment_counted(img, max_side)[:2]


def measure_image(
    img: np.ndarray, max_side: int = 512
) -> tuple[Morphology, np.ndarray, np.ndarray]:
    """Segment and measure one image; returns (measures, spheroid mask, debris mask)."""
    gray = img.mean(0) if img.ndim == 3 else img
    sph, debris, n_comparable = segment_counted(gray, max_side)
    shape = shape_measures(sph)
    vals = gray[sph]
    tot = sph.sum() + debris.sum()
    m = Morphology(
        **shape,
        mean_intensity=float(vals.mean()) if vals.size else 0.0,
        std_intensity=float(vals.std()) if vals.size else 0.0,
        debris_fraction=float(debris.sum() / tot) if tot else 0.0,
        n_comparable=n_comparable,
    )
    return m, sph, debris


def overlay(img: np.ndarray, sph: np.ndarray, debris: np.ndarray) -> np.ndarray:
    """RGB uint8 overlay: spheroid outline red, debris yellow."""
    gray = img.mean(0) if img.ndim == 3 else img
    rgb = np.repeat((np.clip(gray, 0, 1) * 255).astype(np.uint8)[..., None], 3, 2)
    thick = max(1, max(gray.shape) // 300)
    edge = segmentation.find_boundaries(sph, mode="outer")
    if thick > 1:
        edge = ndimage.binary_dilation(edge, morphology.disk(thick))
    rgb[edge] = (255, 0, 0)
    dedge = segmentation.find_boundaries(debris, mode="outer")
    rgb[dedge] = (255, 220, 0)
    return rgb


def _calibrate(row: dict, um_per_px: float | None) -> dict:
    if um_per_px:
        for k in LENGTHS:
            row[f"{k}_um"] = row[k] * um_per_px
        row["area_um2"] = row["area"] * um_per_px**2
    return row


LENGTHS = ("perimeter", "feret_max", "feret_min", "equivalent_diameter")


def morphology_table(
    table: pd.DataFrame,
    overlay_dir: str | Path | None = None,
    focal: str = "sharpest",
    max_side: int = 512,
    objects: str = "single",
    um_per_px: float | None = None,
) -> pd.DataFrame:
    """Measures for every image of a metadata table.

    ``objects="single"``: one row per image, the spheroid chosen by :func:`segment`'s rule;
    images holding several comparable objects (``n_comparable > 1``) are reported in one
    warning. ``objects="all"``: one row per object found by
    :func:`spheroid_rank.eval.objects.segment_objects` (column ``object``). ``um_per_px``
    adds calibrated columns (``area_um2``, ``perimeter_um``, ``feret_max_um``, ...).
    """
    from tqdm import tqdm

    if objects not in ("single", "all"):
        raise ValueError(f"objects must be 'single' or 'all', got {objects!r}")
    rows = []
    odir = Path(overlay_dir) if overlay_dir else None
    keys = [k for k in ("plate", "well", "day", "group", "condition") if k in table.columns]
    crowded = []
    for rec in tqdm(table.to_dict("records"), desc="morphology", leave=False):
        img = read_image(rec["path"], focal=focal)
        base = {k: rec[k] for k in keys}
        name = (
            f"plate{rec['plate']}_{rec['well']}_day{rec['day']}.png"
            if "well" in rec
            else f"{Path(rec['path']).stem}.png"
        )
        if objects == "all":
            from spheroid_rank.eval.objects import measure_objects, objects_overlay, segment_objects

            labels = segment_objects(img)
            for r in measure_objects(img, labels):
                rows.append(_calibrate({**base, "path": rec["path"], **r}, um_per_px))
            if odir:
                save_rgb(odir / name, objects_overlay(img, labels))
            continue
        m, sph, debris = measure_image(img, max_side)
        if m.n_comparable > 1:
            crowded.append((rec["path"], m.n_comparable))
        rows.append(_calibrate({**base, **asdict(m)}, um_per_px))
        if odir:
            save_rgb(odir / name, overlay(img, sph, debris))
    if crowded:
        path, n = crowded[0]
        log.warning(
            "%d of %d images hold several comparable objects (e.g. %s: %d); single "
            "mode measured the most central large one; use --objects all to measure "
            "every object",
            len(crowded),
            len(table),
            path,
            n,
        )
    return pd.DataFrame(rows)
