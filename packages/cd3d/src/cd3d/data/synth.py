"""Synthetic urban 2D/3D change scenes, written as georeferenced GeoTIFFs in the 3DCD layout.

A scene is a lattice of cells (``cell`` pixels at 0.5 m); each cell's content is drawn from a
random generator seeded by ``(seed, cell_row, cell_col)``, so any window of an arbitrarily large
scene can be rendered on its own and always gives the same pixels. Buildings appear, disappear or
change height between the epochs; each epoch has its own sun direction (shadows), illumination
and sensor noise. Targets are exact: the 2D map marks footprints of changed buildings, the 3D map
is the DSM difference averaged to the 1 m grid with |dH| < 1 m set to 0, as in 3DCD.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.windows import Window

from .io import atomic_path

GSD = 0.5  # metres per orthophoto pixel
CRS_SYNTH = CRS.from_epsg(25830)  # ETRS89 / UTM 30N, the zone of Valladolid
ORIGIN = (355000.0, 4612000.0)  # upper-left corner of the synthetic world (metres)

ROOF_COLOURS = np.array(
    [
        [0.62, 0.30, 0.22],
        [0.55, 0.55, 0.57],
        [0.85, 0.84, 0.80],
        [0.40, 0.36, 0.33],
        [0.70, 0.45, 0.30],
    ],
    dtype=np.float32,
)


@dataclass(frozen=True)
class Epoch:
    """Acquisition conditions of one epoch."""

    sun_dx: float  # shadow offset per metre of height, in pixels (x)
    sun_dy: float
    gain: float
    offset: float
    gamma: float
    noise: float


EPOCHS = (
    Epoch(sun_dx=0.9, sun_dy=0.7, gain=1.0, offset=0.0, gamma=1.0, noise=0.02),
    Epoch(sun_dx=-0.6, sun_dy=1.0, gain=1.12, offset=0.03, gamma=0.9, noise=0.03),
)


def _cell(seed: int, ci: int, cj: int, cell: int, p_build: float, p_change: float) -> dict | None:
    """Building of one lattice cell (or None): footprint (even pixel coords), heights, colour."""
    rng = np.random.default_rng([seed, ci + 1_000_003, cj + 2_000_029])
    if ci % 6 == 5 or cj % 6 == 5:  # road rows/columns
        return None
    if rng.random() > p_build:
        return None
    m = 2 * int(rng.integers(2, max(3, cell // 8)))
    w = 2 * int(rng.integers(cell // 5, (cell - 2 * m) // 2 + 1))
    h = 2 * int(rng.integers(cell // 5, (cell - 2 * m) // 2 + 1))
    y0 = ci * cell + m + 2 * int(rng.integers(0, max(1, (cell - 2 * m - h) // 2 + 1)))
    x0 = cj * cell + m + 2 * int(rng.integers(0, max(1, (cell - 2 * m - w) // 2 + 1)))
    z = float(rng.uniform(3.0, 28.0))
    colour = ROOF_COLOURS[int(rng.integers(len(ROOF_COLOURS)))] * rng.uniform(0.85, 1.1)
    z1 = z2 = z
    kind = "same"
    if rng.random() < p_change:
        kind = ("appear", "vanish", "taller", "lower")[int(rng.integers(4))]
        if kind == "appear":
            z1 = 0.0
        elif kind == "vanish":
            z2 = 0.0
        elif kind == "taller":
            z2 = z + float(rng.uniform(3.0, 12.0))
        else:
            z2 = max(0.0, z - float(rng.uniform(3.0, z)))
            z2 = z2 if z2 >= 3.0 else 0.0
    colour2 = colour if kind != "appear" else ROOF_COLOURS[int(rng.integers(len(ROOF_COLOURS)))]
    return {
        "box": (y0, y0 + h, x0, x0 + w),
        "z": (z1, z2),
        "colour": (colour, colour2),
        "kind": kind,
    }


def _ground(y0: int, x0: int, h: int, w: int, seed: int) -> np.ndarray:
    """Smooth ground texture (soil, grass, pavement) from sinusoids of global coordinates."""
    yy = (np.arange(y0, y0 + h, dtype=np.float32) * GSD)[:, None]
    xx = (np.arange(x0, x0 + w, dtype=np.float32) * GSD)[None, :]
    ph = np.random.default_rng(seed).uniform(0, 2 * np.pi, 6).astype(np.float32)
    f = (
        np.sin(xx / 23.0 + ph[0]) * np.cos(yy / 31.0 + ph[1])
        + 0.5 * np.sin((xx + yy) / 11.0 + ph[2])
        + 0.3 * np.cos((xx - 2 * yy) / 7.0 + ph[3])
    )
    grass = (f > 0.6).astype(np.float32)
    base = np.stack([0.50 + 0.05 * f, 0.46 + 0.04 * f, 0.40 + 0.03 * f])
    green = np.stack([0.25 + 0.04 * f, 0.42 + 0.05 * f, 0.20 + 0.02 * f])
    return base * (1 - grass) + green * grass


def render(
    seed: int,
    y0: int,
    x0: int,
    h: int,
    w: int,
    cell: int = 48,
    p_build: float = 0.55,
    p_change: float = 0.35,
) -> dict[str, np.ndarray]:
    """Render window ``[y0:y0+h, x0:x0+w]`` (even offsets) of scene ``seed``.

    Returns uint8 ``before``/``after`` (3×h×w), uint8 ``mask`` (h×w) and float32 ``dh`` (h×w, m).
    """
    if y0 % 2 or x0 % 2:
        raise ValueError("window offsets must be even so the 1 m grid lines up")
    ground = _ground(y0, x0, h, w, seed)
    imgs = [ground.copy(), ground.copy()]
    # construction sites / changed bare soil differ slightly between epochs
    dsm = [np.zeros((h, w), np.float32), np.zeros((h, w), np.float32)]
    mask = np.zeros((h, w), np.uint8)
    roofs: list[tuple] = []
    halo = 2
    for ci in range(y0 // cell - halo, (y0 + h) // cell + halo + 1):
        for cj in range(x0 // cell - halo, (x0 + w) // cell + halo + 1):
            if ci < 0 or cj < 0:
                continue
            if ci % 6 == 5 or cj % 6 == 5:
                ry0, rx0 = ci * cell - y0, cj * cell - x0
                sl = (
                    slice(max(ry0, 0), max(min(ry0 + cell, h), 0)),
                    slice(max(rx0, 0), max(min(rx0 + cell, w), 0)),
                )
                for img in imgs:
                    img[(slice(None), *sl)] = 0.28
                continue
            b = _cell(seed, ci, cj, cell, p_build, p_change)
            if b is not None:
                roofs.append(b)
    for e, ep in enumerate(EPOCHS):
        img = imgs[e]
        shade = np.ones((h, w), np.float32)
        for b in roofs:
            z = b["z"][e]
            if z <= 0:
                continue
            by0, by1, bx0, bx1 = b["box"]
            for t in np.linspace(0.15, 1.0, 6):
                dy, dx = (
                    int(round(ep.sun_dy * z * t / GSD * 0.5)),
                    int(round(ep.sun_dx * z * t / GSD * 0.5)),
                )
                sy0, sy1 = max(by0 + dy - y0, 0), min(by1 + dy - y0, h)
                sx0, sx1 = max(bx0 + dx - x0, 0), min(bx1 + dx - x0, w)
                if sy0 < sy1 and sx0 < sx1:
                    shade[sy0:sy1, sx0:sx1] = 0.45
        img *= shade
        for b in roofs:
            z = b["z"][e]
            by0, by1, bx0, bx1 = (
                b["box"][0] - y0,
                b["box"][1] - y0,
                b["box"][2] - x0,
                b["box"][3] - x0,
            )
            sy, sx = (
                slice(max(by0, 0), max(min(by1, h), 0)),
                slice(max(bx0, 0), max(min(bx1, w), 0)),
            )
            if z > 0:
                col = b["colour"][e][:, None, None]
                img[:, sy, sx] = col
                # a ridge line gives roofs some structure
                mid = (by0 + by1) // 2
                if 0 <= mid < h:
                    img[:, mid, sx] = col[:, :, 0] * 0.8
                dsm[e][sy, sx] = z
            elif b["kind"] in ("appear", "vanish"):
                img[:, sy, sx] = np.array([0.58, 0.50, 0.40], np.float32)[:, None, None]
        for b in roofs:
            if b["kind"] != "same":
                by0, by1, bx0, bx1 = (
                    b["box"][0] - y0,
                    b["box"][1] - y0,
                    b["box"][2] - x0,
                    b["box"][3] - x0,
                )
                # annotators trace changed buildings slightly outside the roof edge (2 px)
                by0, by1, bx0, bx1 = by0 - 2, by1 + 2, bx0 - 2, bx1 + 2
                mask[max(by0, 0) : max(min(by1, h), 0), max(bx0, 0) : max(min(bx1, w), 0)] = 1
    out = {}
    for e, ep in enumerate(EPOCHS):
        rng = np.random.default_rng([seed, y0, x0, e, 7])
        img = np.clip(imgs[e] * ep.gain + ep.offset, 0, 1) ** ep.gamma
        img = img + rng.normal(0, ep.noise, img.shape).astype(np.float32)
        out["before" if e == 0 else "after"] = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    out["mask"] = mask
    out["dh"] = dsm[1] - dsm[0]
    return out


def height_map_1m(dh: np.ndarray) -> np.ndarray:
    """Average a 0.5 m DSM difference to the 1 m grid and zero |dH| < 1 m (the 3DCD rule)."""
    h, w = dh.shape
    d = dh[: h - h % 2, : w - w % 2].reshape(h // 2, 2, w // 2, 2).mean((1, 3))
    d[np.abs(d) < 1.0] = 0.0
    return d.astype(np.float32)


def _write(path: Path, arr: np.ndarray, transform: Affine, nodata: float | None = None) -> None:
    arr = arr if arr.ndim == 3 else arr[None]
    with (
        atomic_path(path) as tmp,
        rasterio.open(
            tmp,
            "w",
            driver="GTiff",
            width=arr.shape[2],
            height=arr.shape[1],
            count=arr.shape[0],
            dtype=arr.dtype,
            crs=CRS_SYNTH,
            transform=transform,
            nodata=nodata,
            compress="deflate",
        ) as dst,
    ):
        dst.write(arr)


def synth_dataset(
    out: str | Path,
    seed: int = 0,
    n_train: int = 32,
    n_val: int = 8,
    n_test: int = 12,
    tile: int = 400,
    layout: str = "3dcd",
    cell: int = 48,
) -> Path:
    """Write a dataset of ``tile``² tiles in the 3DCD layout (or ``t1t2``); return its root."""
    from .dataset import LAYOUTS

    if tile % 2:
        raise ValueError("tile size must be even (the 3D map is at half resolution)")
    folders = LAYOUTS[layout]
    out = Path(out)
    k = 0
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        for f in folders:
            (out / split / f).mkdir(parents=True, exist_ok=True)
        for _ in range(n):
            # tiles lie on a sparse grid of the world so splits never overlap
            ty, tx = divmod(k, 50)
            y0, x0 = ty * tile * 3, tx * tile * 3
            k += 1
            s = render(seed, y0, x0, tile, tile, cell=cell)
            tr = Affine(GSD, 0, ORIGIN[0] + x0 * GSD, 0, -GSD, ORIGIN[1] - y0 * GSD)
            name = f"{(ORIGIN[0] + x0 * GSD) / 1000:.0f}-{(ORIGIN[1] - y0 * GSD) / 1000:.0f}_{ty}_{tx}.tif"
            _write(out / split / folders[0] / name, s["before"], tr)
            _write(out / split / folders[1] / name, s["after"], tr)
            _write(out / split / folders[2] / name, s["mask"], tr)
            _write(out / split / folders[3] / name, height_map_1m(s["dh"]), tr @ Affine.scale(2))
    return out


def synth_pair(
    out: str | Path,
    size: int = 2048,
    seed: int = 1,
    strip: int = 512,
    cell: int = 48,
    with_targets: bool = True,
) -> dict[str, Path]:
    """Write a large ``size``² before/after pair (and its 2D/3D truth) strip by strip.

    Memory stays bounded by one strip, so 16384² rasters can be produced on a small machine.
    """
    if size % 2 or strip % 2:
        raise ValueError("size and strip must be even")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tr = Affine(GSD, 0, ORIGIN[0], 0, -GSD, ORIGIN[1])
    names = {"before": "before.tif", "after": "after.tif"}
    if with_targets:
        names |= {"mask": "truth_2d.tif", "dh": "truth_3d.tif"}
    prof = dict(
        driver="GTiff",
        crs=CRS_SYNTH,
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
    )
    with contextlib.ExitStack() as stack:
        dsts = {}
        for k, n in names.items():
            tmp = stack.enter_context(atomic_path(out / n))
            if k == "dh":
                d = rasterio.open(
                    tmp,
                    "w",
                    width=size // 2,
                    height=size // 2,
                    count=1,
                    dtype="float32",
                    transform=tr @ Affine.scale(2),
                    **prof,
                )
            else:
                d = rasterio.open(
                    tmp,
                    "w",
                    width=size,
                    height=size,
                    count=3 if k in ("before", "after") else 1,
                    dtype="uint8",
                    transform=tr,
                    **prof,
                )
            dsts[k] = stack.enter_context(d)  # closed before its atomic_path renames it
        for y in range(0, size, strip):
            hh = min(strip, size - y)
            s = render(seed, y, 0, hh, size, cell=cell)
            for k, d in dsts.items():
                if k == "dh":
                    d.write(
                        height_map_1m(s["dh"])[None], window=Window(0, y // 2, size // 2, hh // 2)
                    )
                else:
                    a = s[k] if s[k].ndim == 3 else s[k][None]
                    d.write(a, window=Window(0, y, size, hh))
    return {k: out / n for k, n in names.items()}


def write_synthetic(
    out: str | Path,
    seed: int = 0,
    n_train: int = 32,
    n_val: int = 8,
    n_test: int = 12,
    tile: int = 400,
    layout: str = "3dcd",
    large: int = 0,
) -> dict:
    """The ``synth`` command: a tile dataset under ``out`` and, with ``large``, a ``large``² pair
    under ``out/large``; returns what was written."""
    root = synth_dataset(out, seed, n_train, n_val, n_test, tile, layout)
    msg: dict = {
        "dataset": str(root),
        "tiles": {"train": n_train, "val": n_val, "test": n_test},
        "tile": tile,
    }
    if large:
        msg["large_pair"] = {
            k: str(v) for k, v in synth_pair(Path(out) / "large", large, seed + 1).items()
        }
    return msg
