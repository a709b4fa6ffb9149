"""Tiled, georeferenced inference on rasters of any size with blended seams.

Windows of ``tile`` pixels overlap by ``overlap``; each window's outputs are weighted by a window
that tapers linearly over the overlap. The weights are separable, so they are normalised up front
(per row and per column of windows) and the blended output is a plain sum of weighted windows.

Device memory does not grow with the raster: the windows run in raster order in batches of exactly
``batch_size`` (a batch may span rows of windows), and the device holds only the two input batch
buffers, the model's working set and a rolling accumulator of the rows not yet finished; that
accumulator is ``rows × width`` with ``rows`` bounded by one batch's span (see :class:`TilePlan`),
and finished rows go out in fixed-width column chunks.

The work runs as a three-stage pipeline so the model never waits on GDAL: background threads read
the next rows of windows (full-width strips cut into window stacks, pinned memory on CUDA), the
main thread copies one batch at a time to the device, runs the model and blends there, and a
writer thread applies nodata, compresses and writes finished strips while the next batch runs.
Odd raster sizes are padded by one replicated row/column (kept even for the half-resolution 3D
grid) and cropped on writing.
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
CHUNK = 2048  # column chunk of the device-side finishing and shifting steps


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
    compile: bool = False  # torch.compile the network (the first batch pays the compile time)
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


def norm_weights(starts: list[int], size: int, n: int, taper: int) -> np.ndarray:
    """``len(starts) × size`` ramps divided by their sum over the axis (each pixel's sum is 1)."""
    r = ramp(size, taper)
    total = np.zeros(n, np.float64)
    for s in starts:
        total[s : s + size] += r
    return np.stack([r / total[s : s + size] for s in starts]).astype(np.float32)


@dataclass(frozen=True)
class TilePlan:
    """Where the windows of one (even-padded) raster go and what the device holds for them."""

    height: int  # padded to even
    width: int
    ys: tuple[int, ...]  # window starts per axis
    xs: tuple[int, ...]
    th: int  # window size (all windows share it)
    tw: int
    batch: int
    batches: tuple[tuple[int, int], ...]  # [k0, k1) in the row-major window stream
    rows: int  # height of the rolling accumulator (pixels of the 2D grid)

    @property
    def windows(self) -> int:
        return len(self.ys) * len(self.xs)

    def strip_end(self, i: int) -> int:
        """Last row (exclusive) finished with row ``i`` of windows."""
        return self.ys[i + 1] if i + 1 < len(self.ys) else self.height

    def device_buffers(self, bands: int = 3) -> dict[str, tuple[int, ...]]:
        """Shapes of the buffers :func:`predict_rasters` keeps on the device."""
        b, th, tw = self.batch, self.th, self.tw
        return {
            "before": (b, bands, th, tw),
            "after": (b, bands, th, tw),
            "weighted_2d": (b, th, tw),
            "weighted_3d": (b, th // 2, tw // 2),
            "acc_2d": (self.rows, self.width),
            "acc_3d": (self.rows // 2, self.width // 2),
        }


def plan_tiles(height: int, width: int, cfg: PredictConfig) -> TilePlan:
    """Windows, batches and accumulator height for a ``height × width`` raster."""
    H, W = height + height % 2, width + width % 2
    stride = cfg.tile - cfg.overlap
    ys = [s for s, _ in positions(H, cfg.tile, stride)]
    xs = [s for s, _ in positions(W, cfg.tile, stride)]
    th, tw = min(cfg.tile, H), min(cfg.tile, W)
    m, n, b = len(xs), len(ys) * len(xs), max(1, cfg.batch_size)
    batches = tuple((k, min(k + b, n)) for k in range(0, n, b))
    rows = max(ys[(k1 - 1) // m] + th - ys[k0 // m] for k0, k1 in batches)
    return TilePlan(H, W, tuple(ys), tuple(xs), th, tw, b, batches, rows)


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
    if cfg.compile and getattr(det, "_compiled_call_impl", None) is None:  # not compiled yet
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


class _RowReader:
    """Reads one full-width strip per row of windows in its own thread (one GDAL handle) and cuts
    it into a ``windows × bands × th × tw`` stack (pinned on CUDA), padding odd edges."""

    def __init__(self, src, plan: TilePlan, pin: bool) -> None:
        self.src, self.plan, self.pin, self.mask = src, plan, pin, _needs_mask(src)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="cd3d-read")

    def _read(self, y: int) -> tuple[torch.Tensor, np.ndarray | None]:
        p, src = self.plan, self.src
        h = min(p.th, src.height - y)
        win = Window(0, y, src.width, h)
        strip = np.empty((src.count, p.th, p.width), np.uint8)
        src.read(window=win, out=strip[:, :h, : src.width])
        strip[:, h:] = strip[:, h - 1 : h]  # odd height: replicate the last row
        strip[:, :, src.width :] = strip[:, :, src.width - 1 : src.width]
        tiles = torch.empty(
            (len(p.xs), src.count, p.th, p.tw), dtype=torch.uint8, pin_memory=self.pin
        )
        view = torch.from_numpy(strip)
        torch.stack([view[:, :, x : x + p.tw] for x in p.xs], out=tiles)
        ok = None
        if self.mask:
            ok = np.ones((p.th, p.width), bool)
            ok[:h, : src.width] = (src.read_masks(window=win) > 0).all(0)
        return tiles, ok

    def submit(self, y: int) -> Future:
        return self.pool.submit(self._read, y)


def _write_strip(d2, d3, plan: TilePlan, H: int, W: int, y: int, v2, hv, ok, done) -> None:
    """Writer thread: wait for the device copies, apply nodata, crop the padding, write."""
    if done is not None:
        done.synchronize()
    v2 = v2.numpy() if isinstance(v2, torch.Tensor) else v2
    n = v2.shape[0]
    if ok is not None:
        v2[~ok[:n]] = NODATA_2D
    d2.write(v2[None, : min(n, H - y), :W], window=Window(0, y, W, min(n, H - y)))
    if d3 is not None:
        hv = hv.numpy() if isinstance(hv, torch.Tensor) else hv
        if ok is not None:
            hv[~ok[:n].reshape(n // 2, 2, plan.width // 2, 2).all((1, 3))] = NODATA_3D
        d3.write(hv[None], window=Window(0, y // 2, plan.width // 2, n // 2))


def _run(
    det, a, b, out: Path, cfg: PredictConfig, dev: torch.device, amp: bool, cl: bool, progress: bool
) -> dict[str, Path]:
    H, W = a.height, a.width
    plan = plan_tiles(H, W, cfg)
    with_3d = getattr(det, "task", "3d") == "3d"  # a 2D-only detector writes change_2d.tif alone
    paths = {"change_2d": out / "change_2d.tif", "change_3d": out / "change_3d.tif"}
    if not with_3d:
        del paths["change_3d"]
    p2 = _profile(a, "uint8", NODATA_2D, W, H, a.transform, cfg.zlevel)
    p3 = _profile(
        a, "float32", NODATA_3D, plan.width // 2, plan.height // 2, a.transform @ Affine.scale(2),
        cfg.zlevel,
    )  # fmt: skip
    m, th, tw, rows = len(plan.xs), plan.th, plan.tw, plan.rows
    f32 = {"device": dev, "dtype": torch.float32}

    def weights(starts, size, n, taper):
        return torch.from_numpy(norm_weights(list(starts), size, n, taper)).to(dev)

    wy, wx = (
        weights(plan.ys, th, plan.height, cfg.overlap),
        weights(plan.xs, tw, plan.width, cfg.overlap),
    )
    wy3 = weights([y // 2 for y in plan.ys], th // 2, plan.height // 2, cfg.overlap // 2)
    wx3 = weights([x // 2 for x in plan.xs], tw // 2, plan.width // 2, cfg.overlap // 2)
    win_row = torch.arange(plan.windows, device=dev) // m
    win_col = torch.arange(plan.windows, device=dev) % m
    acc2 = torch.zeros(rows, plan.width, **f32)
    acc3 = torch.zeros(rows // 2, plan.width // 2, **f32) if with_3d else None
    shapes = plan.device_buffers(a.count)
    xa = torch.empty(shapes["before"], dtype=torch.uint8, device=dev)
    xb = torch.empty(shapes["after"], dtype=torch.uint8, device=dev)
    pin = dev.type == "cuda"
    from tqdm import tqdm

    bar = tqdm(total=plan.windows, desc="predict", unit="tile", disable=not progress)
    with contextlib.ExitStack() as stack:
        d2 = stack.enter_context(
            rasterio.open(stack.enter_context(atomic_path(paths["change_2d"])), "w", **p2)
        )
        d3 = None
        if with_3d:
            d3 = stack.enter_context(
                rasterio.open(stack.enter_context(atomic_path(paths["change_3d"])), "w", **p3)
            )
        readers = [_RowReader(a, plan, pin), _RowReader(b, plan, pin)]
        writer = ThreadPoolExecutor(1, thread_name_prefix="cd3d-write")
        for pool in (writer, *(r.pool for r in readers)):  # shut down before the files close
            stack.callback(pool.shutdown, wait=True, cancel_futures=True)
        ahead: dict[int, tuple[Future, Future]] = {}
        got: dict[int, tuple] = {}
        writes: deque[Future] = deque()
        base, done_rows = 0, 0  # first pixel row held in the accumulators; rows of windows done

        def row(i: int) -> tuple:
            for r in range(i, min(i + cfg.prefetch + 1, len(plan.ys))):
                if r not in ahead and r not in got:
                    ahead[r] = tuple(rd.submit(plan.ys[r]) for rd in readers)
            if i not in got:
                (ta, oka), (tb, okb) = (f.result() for f in ahead.pop(i))
                ok = oka if okb is None else okb if oka is None else oka & okb
                got[i] = (ta, tb, ok)
            return got[i]

        def finish(i: int) -> None:
            """Copy the finished rows of window row ``i`` out and hand them to the writer."""
            y, end = plan.ys[i], plan.strip_end(i)
            o, n = y - base, end - y
            host = {"pin_memory": pin}
            v2 = torch.empty(n, plan.width, dtype=torch.uint8, **host)
            hv = (
                torch.empty(n // 2, plan.width // 2, dtype=torch.float32, **host)
                if with_3d
                else None
            )
            for c in range(0, plan.width, CHUNK):
                p = acc2[o : o + n, c : c + CHUNK]
                q = (p >= cfg.threshold) if cfg.output_2d == "mask" else torch.round(p * 254)
                v2[:, c : c + CHUNK].copy_(q.to(torch.uint8), non_blocking=pin)
                if with_3d:
                    hv[:, c // 2 : (c + CHUNK) // 2].copy_(
                        acc3[o // 2 : (o + n) // 2, c // 2 : (c + CHUNK) // 2], non_blocking=pin
                    )
            ev = None
            if pin:  # the writer waits on the event, not the main thread
                ev = torch.cuda.Event()
                ev.record()
            ok = got.pop(i)[2]
            writes.append(writer.submit(_write_strip, d2, d3, plan, H, W, y, v2, hv, ok, ev))
            while len(writes) > 2 or (writes and writes[0].done()):
                writes.popleft().result()

        def shift(s: int) -> None:
            """Drop the first ``s`` pixel rows of the accumulators (column chunk by chunk)."""
            for acc, k in ((acc2, s), (acc3, s // 2)):
                if acc is None or k == 0:
                    continue
                for c in range(0, acc.shape[1], CHUNK):
                    acc[: acc.shape[0] - k, c : c + CHUNK] = acc[k:, c : c + CHUNK].clone()
                acc[acc.shape[0] - k :] = 0

        for k0, k1 in plan.batches:
            nb, filled = k1 - k0, 0
            for r in range(k0 // m, (k1 - 1) // m + 1):
                j0, j1 = max(k0 - r * m, 0), min(k1 - r * m, m)
                ta, tb, _ = row(r)
                xa[filled : filled + j1 - j0].copy_(ta[j0:j1], non_blocking=pin)
                xb[filled : filled + j1 - j0].copy_(tb[j0:j1], non_blocking=pin)
                filled += j1 - j0
            run = plan.batch if cfg.compile else nb  # compiled: one static batch shape
            prob, hgt = infer(det, xa[:run], xb[:run], cfg.tta, amp, dev, cl)
            gy, gx = win_row[k0:k1], win_col[k0:k1]  # device indices: no host sync
            w2 = prob[:nb].float() * wy[gy][:, :, None] * wx[gx][:, None, :]
            w3 = hgt[:nb].float() * wy3[gy][:, :, None] * wx3[gx][:, None, :] if with_3d else None
            for t, k in enumerate(range(k0, k1)):
                y, x = plan.ys[k // m] - base, plan.xs[k % m]
                acc2[y : y + th, x : x + tw] += w2[t]
                if with_3d:
                    acc3[y // 2 : (y + th) // 2, x // 2 : (x + tw) // 2] += w3[t]
            bar.update(nb)
            while done_rows < len(plan.ys) and (done_rows + 1) * m <= k1:
                finish(done_rows)
                done_rows += 1
                nxt = plan.ys[done_rows] if done_rows < len(plan.ys) else base
                if nxt > base:
                    shift(nxt - base)
                    base = nxt
        while writes:
            writes.popleft().result()
    bar.close()
    return paths
