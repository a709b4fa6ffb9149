"""Ultrasound-like synthetic images in the BUSI layout.

Tissue layers with smooth echogenicity texture, multiplicative (Rayleigh) speckle, depth
attenuation, and for ``benign``/``malignant`` a hypo-echoic lesion: smooth oval with posterior
enhancement (benign) or an irregular, spiculated mass with posterior shadowing (malignant).
Masks are written beside the images (``_mask.png``, a second lesion as ``_mask_1.png``), a few
images are saved as 16-bit / RGBA / RGB to exercise the readers, and a few exact duplicates
under new names exercise duplicate grouping.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

BUSI_FRACTIONS = {"benign": 437 / 780, "malignant": 210 / 780, "normal": 133 / 780}


def _lesion_mask(rng: np.random.Generator, size: int, malignant: bool) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    cx, cy = rng.uniform(0.3, 0.7) * size, rng.uniform(0.35, 0.65) * size
    radius = rng.uniform(0.15, 0.24) * size
    aspect = rng.uniform(0.55, 0.85) if not malignant else rng.uniform(0.8, 1.2)
    theta = np.arctan2((yy - cy) / aspect, xx - cx)
    dist = np.hypot(xx - cx, (yy - cy) / aspect)
    r = np.ones_like(theta)
    ks = range(2, 4) if not malignant else range(3, 14)
    for k in ks:
        amp = rng.uniform(0.0, 0.06) if not malignant else rng.uniform(0.02, 0.12)
        r += amp * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    return (dist < radius * r).astype(np.float64)


def synth_image(
    rng: np.random.Generator, size: int = 128, kind: str = "benign"
) -> tuple[np.ndarray, list[np.ndarray]]:
    """One uint8 grayscale image and its lesion masks (empty list for ``normal``)."""
    y = np.linspace(0.0, 1.0, size)[:, None]
    layers = 0.35 + 0.45 * np.exp(-(((y - 0.06) / 0.03) ** 2))  # bright skin line
    layers = layers + 0.07 * np.sin(2 * np.pi * (y * rng.uniform(2, 4) + rng.uniform(0, 1)))
    texture = gaussian_filter(rng.normal(size=(size, size)), sigma=size / 16)
    texture /= texture.std() + 1e-8
    tissue = np.clip(layers + 0.06 * texture, 0.08, None) * np.ones((1, size))
    masks: list[np.ndarray] = []
    if kind != "normal":
        malignant = kind == "malignant"
        n_lesions = 2 if rng.random() < 0.1 else 1
        for _ in range(n_lesions):
            m = _lesion_mask(rng, size, malignant)
            soft = gaussian_filter(m, sigma=1.0 if malignant else 2.0)
            tissue = tissue * (1.0 - rng.uniform(0.8, 0.9) * soft)
            cols = m.any(axis=0)
            below = np.cumsum(m, axis=0) > 0
            post = gaussian_filter((below & ~m.astype(bool) & cols[None]).astype(float), 2)
            tissue = tissue * (1.0 + (0.35 if not malignant else -0.45) * post)
            masks.append(m)
    speckle = rng.rayleigh(scale=1.0, size=(size, size)) / np.sqrt(np.pi / 2)
    speckle = gaussian_filter(speckle, sigma=0.6)
    img = tissue * speckle * np.exp(-rng.uniform(0.4, 1.2) * y)
    img[: max(1, size // 40)] *= 0.2  # coupling gel
    img = np.clip(img / np.percentile(img, 99.5), 0, 1) ** 0.8
    return (img * 255).astype(np.uint8), masks


def _save(img: np.ndarray, path: Path, mode: str) -> None:
    if mode == "I;16":
        Image.fromarray(img.astype(np.uint16) * 257).save(path)
    elif mode == "RGBA":
        rgba = np.dstack([img, img, img, np.full_like(img, 255)])
        Image.fromarray(rgba, "RGBA").save(path)
    elif mode == "RGB":
        Image.fromarray(np.dstack([img] * 3), "RGB").save(path)
    else:
        Image.fromarray(img, "L").save(path)


def write_synthetic(
    out: str | Path, n: int = 300, size: int = 128, seed: int = 0, n_duplicates: int | None = None
) -> dict[str, int]:
    """Write ``n`` images (BUSI class mix) plus masks and duplicates under ``out``.

    Returns counts: images per class, ``masks``, ``duplicates``.
    """
    out = Path(out)
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {"masks": 0}
    written: list[Path] = []
    modes = ["L"] * 17 + ["RGB", "I;16", "RGBA"]
    for kind, frac in BUSI_FRACTIONS.items():
        folder = out / kind
        folder.mkdir(parents=True, exist_ok=True)
        k = max(2, round(n * frac))
        for i in range(1, k + 1):
            img, masks = synth_image(rng, size, kind)
            path = folder / f"{kind} ({i}).png"
            _save(img, path, modes[int(rng.integers(len(modes)))])
            written.append(path)
            for j, m in enumerate(masks or [np.zeros((size, size))]):
                suffix = "_mask" if j == 0 else f"_mask_{j}"
                Image.fromarray((m * 255).astype(np.uint8), "L").save(
                    folder / f"{kind} ({i}){suffix}.png"
                )
                counts["masks"] += 1
        counts[kind] = k
    n_dup = max(2, n // 50) if n_duplicates is None else n_duplicates
    for j, idx in enumerate(rng.choice(len(written), size=n_dup, replace=False)):
        src = written[int(idx)]
        dst = src.parent / f"{src.parent.name} (dup{j + 1}).png"
        shutil.copyfile(src, dst)
        counts[src.parent.name] += 1
    counts["duplicates"] = n_dup
    return counts
