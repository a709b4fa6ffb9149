"""Tiled, georeferenced inference on rasters of any size with blended seams.

Tiles of ``tile`` pixels overlap by ``overlap``; each tile's outputs are weighted by a window
that tapers linearly over the overlap, summed into a rolling strip buffer, normalised and written
as soon as a strip is complete. Peak memory is set by tile size × raster width, not raster area.

The work runs as a three-stage pipeline so the model never waits on GDAL: background threads read
the next rows of windows (one full-width strip per epoch, into pinned memory on CUDA), the
main thread cuts tiles, runs the model and blends on the device, and a writer thread compresses
and writes finished strips while the next row is computed.
"""

from __future__ import annotations

import contextlib
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.enums import MaskFlags
from rasterio.errors import NotGeoreferencedWarning
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
    """Options of :func:`predict_rasters`; ``None`` means "bf16 / channels_last on CUDA only"."""

    tile: int = 400
    overlap: int = 64
    batch_size: int = 4
    tta: bool | str = False  # False | "flip" (or True) | "d4"
    output_2d: str = "prob"  # prob: uint8 round(p·254), 255 = nodata | mask: {0,1}, 255 = nodata
    threshold: float = 0.5
    device: str = "cpu"
    amp: bool | None = None  # bf16 autocast
    channels_last: bool | None = None
    compile: bool = False  # torch.compile the network (first batches pay the compile time)
    prefetch: int = 2  # rows of windows read ahead
    zlevel: int = 1  # deflate level of the outputs (1 is fast; 6 is GDAL's default)


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


def split_even(n: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, stop) of ⌈n / batch_size⌉ batches of near-equal size (49 tiles at 32 → 25 + 24)."""
    k = max(1, -(-n // max(batch_size, 1)))
    edges = [round(i * n / k) for i in range(k + 1)]
    return [(edges[i], edges[i + 1]) for i in range(k) if edges[i + 1] > edges[i]]


def _profile(
    src, dtype: str, nodata: float, width: int, height: int, transform: Affine, zlevel: int
) -> dict:
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
        zlevel=zlevel,
        num_threads="ALL_CPUS",
        BIGTIFF="IF_SAFER",
    )


def prepare_detector(
    det: ChangeDetector, cfg: PredictConfig
) -> tuple[ChangeDetector, torch.device, bool, bool]:
    """Move ``det`` to the device in eval mode; resolve amp / channels_last; optionally compile it."""
    dev = torch.device(cfg.device)
    cuda = dev.type == "cuda"
    amp = cuda if cfg.amp is None else bool(cfg.amp)
    cl = cuda if cfg.channels_last is None else bool(cfg.channels_last)
    det = det.to(dev).eval()
    if cl:
        det = det.to(memory_format=torch.channels_last)
    if cuda:
        torch.backends.cudnn.benchmark = True
    if cfg.compile:
        det.compile()
    return det, dev, amp, cl


def predict_rasters(
    det: ChangeDetector,
    before: str | Path,
    after: str | Path,
    out: str | Path,
    cfg: PredictConfig | None = None,
    align: bool = False,
    progress: bool = True,
) -> dict[str, Path]:
    """Write ``out/change_2d.tif`` and (unless ``det.task == "2d"``) ``out/change_3d.tif`` for a
    co-registered pair; inputs without a CRS (e.g. PNG tiles) give outputs without one."""
    cfg = cfg or PredictConfig()
    if cfg.tile % 2 or cfg.overlap % 2 or not 0 <= cfg.overlap < cfg.tile:
        raise CD3DError(
            f"tile {cfg.tile} / overlap {cfg.overlap}: both must be even with 0 <= overlap < tile"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    det, dev, amp, cl = prepare_detector(det, cfg)
    with rasterio.Env(GDAL_CACHEMAX=64, GDAL_NUM_THREADS="ALL_CPUS"), warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # plain PNG/JPEG tiles are fine
        a, b = open_pair(str(before), str(after), align)
        try:
            return _run(det, a, b, out, cfg, dev, amp, cl, progress)
        finally:
            b.close()
            a.close()


def _needs_mask(src) -> bool:
    return any(MaskFlags.all_valid not in flags for flags in src.mask_flag_enums)


class _StripReader:
    """Reads full-width strips of one epoch in its own thread (one GDAL handle, one thread)."""

    def __init__(self, src, pin: bool) -> None:
        self.src, self.pin, self.mask = src, pin, _needs_mask(src)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="cd3d-read")

    def _read(self, y: int, h: int) -> tuple[torch.Tensor, np.ndarray | None]:
        win = Window(0, y, self.src.width, h)
        buf = torch.empty(
            (self.src.count, h, self.src.width), dtype=torch.uint8, pin_memory=self.pin
        )
        self.src.read(window=win, out=buf.numpy())
        ok = (self.src.read_masks(window=win) > 0).all(0) if self.mask else None
        return buf, ok

    def submit(self, y: int, h: int) -> Future:
        return self.pool.submit(self._read, y, h)


def _run(
    det, a, b, out: Path, cfg: PredictConfig, dev: torch.device, amp: bool, cl: bool, progress: bool
) -> dict[str, Path]:
    stride = cfg.tile - cfg.overlap
    H, W = a.height, a.width
    H3, W3 = (H + 1) // 2, (W + 1) // 2
    with_3d = getattr(det, "task", "3d") == "3d"  # a 2D-only detector writes change_2d.tif alone
    paths = {"change_2d": out / "change_2d.tif", "change_3d": out / "change_3d.tif"}
    if not with_3d:
        del paths["change_3d"]
    p2 = _profile(a, "uint8", NODATA_2D, W, H, a.transform, cfg.zlevel)
    p3 = _profile(a, "float32", NODATA_3D, W3, H3, a.transform @ Affine.scale(2), cfg.zlevel)
    ys, xs = positions(H, cfg.tile, stride), positions(W, cfg.tile, stride)
    cap = max(s for _, s in ys) + 1
    cap3 = cap // 2 + 1
    f32 = {"device": dev, "dtype": torch.float32}
    acc2, w2 = torch.zeros(cap, W, **f32), torch.zeros(cap, W, **f32)
    acc3, w3 = torch.zeros(cap3, W3, **f32), torch.zeros(cap3, W3, **f32)
    valid = torch.ones(cap, W, dtype=torch.bool, device=dev)
    weights: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def window_weights(th: int, tw: int) -> tuple[torch.Tensor, torch.Tensor]:
        if (th, tw) not in weights:
            h3, w3w = (th + 1) // 2, (tw + 1) // 2
            wt = ramp(th, cfg.overlap)[:, None] * ramp(tw, cfg.overlap)[None, :]
            wt3 = ramp(h3, cfg.overlap // 2)[:, None] * ramp(w3w, cfg.overlap // 2)[None, :]
            weights[th, tw] = (torch.from_numpy(wt).to(dev), torch.from_numpy(wt3).to(dev))
        return weights[th, tw]

    groups: dict[int, list[int]] = {}  # the last tile of a row may be narrower: batch by width
    for x, tw in xs:
        groups.setdefault(tw, []).append(x)
    pin = dev.type == "cuda"
    from tqdm import tqdm

    bar = tqdm(total=len(ys) * len(xs), desc="predict", unit="tile", disable=not progress)
    with contextlib.ExitStack() as stack:
        d2 = stack.enter_context(
            rasterio.open(stack.enter_context(atomic_path(paths["change_2d"])), "w", **p2)
        )
        d3 = None
        if with_3d:
            d3 = stack.enter_context(
                rasterio.open(stack.enter_context(atomic_path(paths["change_3d"])), "w", **p3)
            )
        readers = [_StripReader(a, pin), _StripReader(b, pin)]
        writer = ThreadPoolExecutor(1, thread_name_prefix="cd3d-write")
        for pool in (
            writer,
            *(r.pool for r in readers),
        ):  # shut down (waiting) before the files close
            stack.callback(pool.shutdown, wait=True, cancel_futures=True)
        ahead: deque[tuple[Future, Future]] = deque()
        writes: deque[Future] = deque()

        def write(
            y: int, n: int, v2: torch.Tensor, y3: int, n3: int, hv: torch.Tensor, done
        ) -> None:
            if done is not None:
                done.synchronize()
            d2.write(v2.numpy()[None], window=Window(0, y, W, n))
            if d3 is not None:
                d3.write(hv.numpy()[None], window=Window(0, y3, W3, n3))

        for i, (y, th) in enumerate(ys):
            while len(ahead) <= cfg.prefetch and i + len(ahead) < len(ys):
                yy, hh = ys[i + len(ahead)]
                ahead.append(tuple(r.submit(yy, hh) for r in readers))
            (sa, oka), (sb, okb) = (f.result() for f in ahead.popleft())
            sa, sb = sa.to(dev, non_blocking=True), sb.to(dev, non_blocking=True)
            for ok in (oka, okb):
                if ok is not None:
                    valid[:th] &= torch.from_numpy(ok).to(dev)
            for tw, starts in groups.items():
                wt, wt3 = window_weights(th, tw)
                h3, w3w = wt3.shape
                for lo, hi in split_even(len(starts), cfg.batch_size):
                    chunk = starts[lo:hi]
                    tb = torch.stack([sa[:, :, x : x + tw] for x in chunk])
                    ta = torch.stack([sb[:, :, x : x + tw] for x in chunk])
                    prob, hgt = infer(det, tb, ta, cfg.tta, amp, dev, cl)
                    for j, x in enumerate(chunk):
                        acc2[:th, x : x + tw] += prob[j] * wt
                        w2[:th, x : x + tw] += wt
                        acc3[:h3, x // 2 : x // 2 + w3w] += hgt[j] * wt3
                        w3[:h3, x // 2 : x // 2 + w3w] += wt3
                    bar.update(len(chunk))
            nxt = ys[i + 1][0] if i + 1 < len(ys) else H
            n = nxt - y
            prob = acc2[:n] / w2[:n].clamp_min(1e-12)
            ok = valid[:n]
            if cfg.output_2d == "mask":
                v2 = (prob >= cfg.threshold).to(torch.uint8)
            else:
                v2 = torch.round(prob * 254).to(torch.uint8)
            v2[~ok] = NODATA_2D
            n3 = (nxt + 1) // 2 - y // 2
            hv = acc3[:n3] / w3[:n3].clamp_min(1e-12)
            okp = torch.ones(2 * n3, 2 * W3, dtype=torch.bool, device=dev)
            okp[:n, :W] = ok
            hv[~okp.view(n3, 2, W3, 2).all(3).all(1)] = NODATA_3D
            done = None  # v2 and hv are fresh tensors, not views of the buffers shifted below
            if dev.type == "cuda":  # copy out without blocking; the writer waits on the event
                v2 = v2.to("cpu", non_blocking=True)
                hv = hv.to("cpu", non_blocking=True)
                done = torch.cuda.Event()
                done.record()
            writes.append(writer.submit(write, y, n, v2, y // 2, n3, hv, done))
            while len(writes) > 2 or (writes and writes[0].done()):
                writes.popleft().result()
            for buf in (acc2, w2):
                buf[: cap - n] = buf[n:].clone()
                buf[cap - n :] = 0
            valid[: cap - n] = valid[n:].clone()
            valid[cap - n :] = True
            for buf in (acc3, w3):
                buf[: cap3 - n3] = buf[n3:].clone()
                buf[cap3 - n3 :] = 0
        while writes:
            writes.popleft().result()
    bar.close()
    return paths
