"""Tiled, georeferenced inference on rasters of any size with blended seams.

Tiles of ``tile`` pixels overlap by ``overlap``; each tile's outputs are weighted by a window
that tapers linearly over the overlap, summed into a rolling strip buffer, normalised and written
as soon as a strip is complete. Peak memory is set by tile size × raster width, not raster area.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.transform import Affine
from rasterio.windows import Window

from ..data.io import CD3DError, atomic_path
from ..models.wrapper import ChangeDetector
from .georef import open_pair
from .infer import infer

NODATA_2D = 255
NODATA_3D = -9999.0


@dataclass
class PredictConfig:
    """Options of :func:`predict_rasters`."""

    tile: int = 400
    overlap: int = 64
    batch_size: int = 4
    tta: bool = False
    output_2d: str = "prob"  # prob: uint8 round(p·254), 255 = nodata | mask: {0,1}, 255 = nodata
    threshold: float = 0.5
    device: str = "cpu"
    amp: bool = False  # bf16 autocast on CUDA


def positions(n: int, tile: int, stride: int) -> list[tuple[int, int]]:
    """(start, size) of tiles along one axis: even starts on a ``stride`` grid, last one flush."""
    if n <= tile:
        return [(0, n)]
    starts = list(range(0, n - tile, stride))
    last = (n - tile) - (n - tile) % 2
    if last > starts[-1]:
        starts.append(last)
    return [(s, min(tile, n - s) if s != starts[-1] else n - s) for s in starts]


def ramp(n: int, taper: int) -> np.ndarray:
    """1-D blending weights: linear over ``taper`` samples at both ends, never below 1e-3."""
    i = np.arange(n, dtype=np.float32) + 0.5
    if taper <= 0:
        return np.ones(n, np.float32)
    return np.clip(np.minimum(i, n - i) / taper, 1e-3, 1.0).astype(np.float32)


def _profile(src, dtype: str, nodata: float, width: int, height: int, transform: Affine) -> dict:
    return dict(
        driver="GTiff",
        width=width,
        height=height,
        count=1,
        dtype=dtype,
        nodata=nodata,
        crs=src.crs,
        transform=transform,
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
        BIGTIFF="IF_SAFER",
    )


def predict_rasters(
    det: ChangeDetector,
    before: str | Path,
    after: str | Path,
    out: str | Path,
    cfg: PredictConfig | None = None,
    align: bool = False,
    progress: bool = True,
) -> dict[str, Path]:
    """Write ``out/change_2d.tif`` and ``out/change_3d.tif`` for a co-registered pair."""
    cfg = cfg or PredictConfig()
    if cfg.tile % 2 or cfg.overlap % 2 or not 0 <= cfg.overlap < cfg.tile:
        raise CD3DError(
            f"tile {cfg.tile} / overlap {cfg.overlap}: both must be even with 0 <= overlap < tile"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device(cfg.device)
    det = det.to(dev).eval()
    with rasterio.Env(GDAL_CACHEMAX=64):
        a, b = open_pair(str(before), str(after), align)
        try:
            return _run(det, a, b, out, cfg, dev, progress)
        finally:
            b.close()
            a.close()


def _run(
    det, a, b, out: Path, cfg: PredictConfig, dev: torch.device, progress: bool
) -> dict[str, Path]:
    stride = cfg.tile - cfg.overlap
    H, W = a.height, a.width
    H3, W3 = (H + 1) // 2, (W + 1) // 2
    paths = {"change_2d": out / "change_2d.tif", "change_3d": out / "change_3d.tif"}
    p2 = _profile(a, "uint8", NODATA_2D, W, H, a.transform)
    p3 = _profile(a, "float32", NODATA_3D, W3, H3, a.transform @ Affine.scale(2))
    ys, xs = positions(H, cfg.tile, stride), positions(W, cfg.tile, stride)
    cap = max(s for _, s in ys) + 1
    acc2, w2 = np.zeros((cap, W), np.float32), np.zeros((cap, W), np.float32)
    acc3, w3 = np.zeros((cap // 2 + 1, W3), np.float32), np.zeros((cap // 2 + 1, W3), np.float32)
    valid = np.ones((cap, W), bool)
    from tqdm import tqdm

    bar = tqdm(total=len(ys) * len(xs), desc="predict", unit="tile", disable=not progress)
    with contextlib.ExitStack() as stack:
        t2, t3 = (stack.enter_context(atomic_path(paths[k])) for k in ("change_2d", "change_3d"))
        with rasterio.open(t2, "w", **p2) as d2, rasterio.open(t3, "w", **p3) as d3:
            for i, (y, th) in enumerate(ys):
                jobs = []
                for x, tw in xs:
                    win = Window(x, y, tw, th)
                    ia, ib = a.read(window=win), b.read(window=win)
                    ok = (a.read_masks(window=win) > 0).all(0) & (b.read_masks(window=win) > 0).all(
                        0
                    )
                    valid[:th, x : x + tw] &= ok
                    jobs.append((x, tw, ia, ib))
                groups: dict[int, list] = {}
                for job in jobs:  # the last tile of a row may be narrower: batch by width
                    groups.setdefault(job[1], []).append(job)
                for tw, group in groups.items():
                    for k in range(0, len(group), cfg.batch_size):
                        chunk = group[k : k + cfg.batch_size]
                        tb = (
                            torch.from_numpy(np.stack([c[2] for c in chunk])).to(dev, torch.float32)
                            / 255.0
                        )
                        ta = (
                            torch.from_numpy(np.stack([c[3] for c in chunk])).to(dev, torch.float32)
                            / 255.0
                        )
                        prob, hgt = infer(det, tb, ta, cfg.tta, cfg.amp)
                        prob, hgt = prob.cpu().numpy(), hgt.cpu().numpy()
                        wt = ramp(th, cfg.overlap)[:, None] * ramp(tw, cfg.overlap)[None, :]
                        h3, w3w = (th + 1) // 2, (tw + 1) // 2
                        wt3 = (
                            ramp(h3, cfg.overlap // 2)[:, None]
                            * ramp(w3w, cfg.overlap // 2)[None, :]
                        )
                        for j, (x, _, _, _) in enumerate(chunk):
                            acc2[:th, x : x + tw] += prob[j] * wt
                            w2[:th, x : x + tw] += wt
                            acc3[:h3, x // 2 : x // 2 + w3w] += hgt[j] * wt3
                            w3[:h3, x // 2 : x // 2 + w3w] += wt3
                        bar.update(len(chunk))
                nxt = ys[i + 1][0] if i + 1 < len(ys) else H
                n = nxt - y
                prob = acc2[:n] / np.maximum(w2[:n], 1e-12)
                ok = valid[:n]
                if cfg.output_2d == "mask":
                    v2 = (prob >= cfg.threshold).astype(np.uint8)
                else:
                    v2 = np.rint(prob * 254).astype(np.uint8)
                v2[~ok] = NODATA_2D
                d2.write(v2[None], window=Window(0, y, W, n))
                n3 = (nxt + 1) // 2 - y // 2
                hv = acc3[:n3] / np.maximum(w3[:n3], 1e-12)
                okp = np.ones((2 * n3, 2 * W3), bool)
                okp[:n, :W] = ok
                ok3 = okp.reshape(n3, 2, W3, 2).all((1, 3))
                hv[~ok3] = NODATA_3D
                d3.write(hv.astype(np.float32)[None], window=Window(0, y // 2, W3, n3))
                for buf in (acc2, w2):
                    buf[: cap - n] = buf[n:].copy()
                    buf[cap - n :] = 0
                valid[: cap - n] = valid[n:].copy()
                valid[cap - n :] = True
                for buf in (acc3, w3):
                    m = buf.shape[0]
                    buf[: m - n3] = buf[n3:].copy()
                    buf[m - n3 :] = 0
    bar.close()
    return paths
