"""Tiled, georeferenced inference on rasters of any size with blended seams.

Windows of ``tile`` pixels overlap by ``overlap``; each window's outputs are weighted by a window
that tapers linearly over the overlap. The weights are separable, so they are normalised up front
(per row and per column of windows) and the blended output is a plain sum of weighted windows.

Device memory does not grow with the raster's height, and only by a few bytes per pixel row with
its width: the windows run in raster order in batches of exactly ``batch_size`` (a batch may span
rows of windows), and the device holds the two input batch buffers, the model's working set, a
ring of input rows per image and a rolling accumulator of the output rows not yet finished; both
are ``rows × width`` with ``rows`` bounded by one batch's span (see :class:`TilePlan`), and
finished rows go out in fixed-width column chunks.

The work runs as a three-stage pipeline so the model never waits on GDAL: one background thread per
image reads full-width chunks of whole file blocks (each block is decoded once) into pinned memory,
the main thread copies them into the device ring on a side stream (overlapping the model), cuts
each batch's windows out of the ring with one gather per image, runs the model and blends on the
device, copies finished rows back with one contiguous copy per map, and a writer thread applies
nodata, compresses and writes whole block rows while the next batches run. Odd raster sizes are padded by one replicated row/column (kept even for the
half-resolution 3D grid) and cropped on writing.
"""

from __future__ import annotations

import contextlib
import threading
import time
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
    prefetch: int = 2  # rows of windows read ahead (in chunks of whole file blocks)
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

    def ring_rows(self, chunk: int) -> int:
        """Rows of the input ring: every chunk of ``chunk`` rows that one batch's windows touch."""
        return chunk * ((self.rows - 1) // chunk + 2)

    def device_buffers(self, bands: int = 3, chunk: int = 256) -> dict[str, tuple[int, ...]]:
        """Shapes of the buffers :func:`predict_rasters` keeps on the device (``chunk``: rows per
        read, see :func:`chunk_rows`)."""
        b, th, tw = self.batch, self.th, self.tw
        return {
            "ring_before": (bands, self.ring_rows(chunk), self.width),
            "ring_after": (bands, self.ring_rows(chunk), self.width),
            "before": (b, bands, th, tw),
            "after": (b, bands, th, tw),
            "weighted_2d": (b, th, tw),
            "weighted_3d": (b, th // 2, tw // 2),
            "acc_2d": (self.rows, self.width),
            "finished_2d": (self.rows, self.width),
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
    stats: dict | None = None,
) -> dict[str, Path]:
    """Write ``out/change_2d.tif`` and (unless ``det.task == "2d"``) ``out/change_3d.tif`` for a
    co-registered pair; inputs without a CRS (e.g. PNG tiles) give outputs without one.

    ``stats``, when given, is filled with seconds per pipeline stage (summed over threads; on CUDA
    also the device time of the batches, ``gpu_batches_s``, and from first to last, ``gpu_span_s``).
    """
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
            return _run(det, a, b, out, cfg, dev, amp, cl, progress, stats)
        finally:
            b.close()
            a.close()


def _needs_mask(src) -> bool:
    return any(MaskFlags.all_valid not in flags for flags in src.mask_flag_enums)


def chunk_rows(src) -> int:
    """Rows per read: whole blocks of the file (about 256 rows), even, so each block decodes once."""
    bh = src.block_shapes[0][0]
    rows = bh * max(1, 256 // bh) if bh <= 1024 else 256
    return rows + rows % 2


class _Timer:
    """Seconds per named stage, summed over threads (``stats`` of :func:`predict_rasters`)."""

    def __init__(self) -> None:
        self.s: dict[str, float] = {}
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def __call__(self, key: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t
            with self.lock:
                self.s[key] = self.s.get(key, 0.0) + dt


class _ChunkReader:
    """Reads full-width chunks of ``rows`` raster rows in raster order, each exactly once, in its
    own thread (one GDAL handle) into ``bands × rows × width`` tensors (pinned on CUDA); the odd
    last row/column is replicated to the plan's even size."""

    def __init__(self, src, plan: TilePlan, rows: int, pin: bool, timer: _Timer) -> None:
        self.src, self.plan, self.rows, self.pin, self.timer = src, plan, rows, pin, timer
        self.mask = _needs_mask(src)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="cd3d-read")

    def _read(self, c: int) -> tuple[torch.Tensor, np.ndarray | None]:
        with self.timer("read_s"):
            p, src, r = self.plan, self.src, self.rows
            y0 = c * r
            h = min(r, src.height - y0)
            buf = torch.empty((src.count, r, p.width), dtype=torch.uint8, pin_memory=self.pin)
            arr = buf.numpy()
            win = Window(0, y0, src.width, h)
            src.read(window=win, out=arr[:, :h, : src.width])
            arr[:, h:] = arr[:, h - 1 : h]
            arr[:, :, src.width :] = arr[:, :, src.width - 1 : src.width]
            ok = None
            if self.mask:
                ok = np.ones((r, p.width), bool)
                ok[:h, : src.width] = (src.read_masks(window=win) > 0).all(0)
            return buf, ok

    def submit(self, c: int) -> Future:
        return self.pool.submit(self._read, c)


class _BlockWriter:
    """Writer-thread state: finished strips (nodata applied) are held until whole block rows are
    complete (``ALIGN`` rows of the 2D grid, one block row of the half-resolution 3D grid), so GDAL
    compresses each block once and never reads back a partly written one."""

    ALIGN = 512  # 2 × 256-row blocks of change_2d, 1 of change_3d

    def __init__(self, d2, d3, plan: TilePlan, H: int, W: int, timer: _Timer) -> None:
        self.d2, self.d3, self.plan, self.H, self.W, self.timer = d2, d3, plan, H, W, timer
        self.y = 0  # first row not written yet
        self.parts: list[tuple[np.ndarray, np.ndarray | None]] = []

    def add(self, v2, hv, ok, done) -> None:
        """Take the rows after the pending ones (their device copies finish at event ``done``)."""
        if done is not None:
            with self.timer("write_wait_gpu_s"):
                done.synchronize()
        with self.timer("write_s"):
            v2 = v2.numpy() if isinstance(v2, torch.Tensor) else v2
            hv = hv.numpy() if isinstance(hv, torch.Tensor) else hv
            n = v2.shape[0]
            if ok is not None:
                v2[~ok[:n]] = NODATA_2D
                if hv is not None:
                    hv[~ok[:n].reshape(n // 2, 2, self.plan.width // 2, 2).all((1, 3))] = NODATA_3D
            self.parts.append((v2, hv))
            self._flush(final=False)

    def close(self) -> None:
        with self.timer("write_s"):
            self._flush(final=True)

    def _flush(self, final: bool) -> None:
        pending = sum(v.shape[0] for v, _ in self.parts)
        n = pending if final else pending - pending % self.ALIGN
        if n == 0:
            return
        v2 = np.concatenate([v for v, _ in self.parts])
        hv = np.concatenate([h for _, h in self.parts]) if self.d3 is not None else None
        y, H, W = self.y, self.H, self.W
        rows = min(n, H - y)
        self.d2.write(v2[None, :rows, :W], window=Window(0, y, W, rows))
        if hv is not None:
            self.d3.write(
                hv[None, : n // 2], window=Window(0, y // 2, self.plan.width // 2, n // 2)
            )
        self.parts = [] if n == pending else [(v2[n:], None if hv is None else hv[n // 2 :])]
        self.y += n


def _blend_strided(acc, w, plan: TilePlan, k0: int, k1: int, base: int, f: int) -> None:
    """Add windows ``k0..k1`` into ``acc`` with two in-place adds per row of windows: the even and
    the odd windows of an evenly spaced run do not overlap (two strides cover a window), so each
    set is one strided view of ``acc``; the flush last window of a row is added on its own."""
    m, th, tw = len(plan.xs), plan.th // f, plan.tw // f
    t = 0
    for r in range(k0 // m, (k1 - 1) // m + 1):
        j0, j1 = max(k0 - r * m, 0), min(k1 - r * m, m)
        y = (plan.ys[r] - base) // f
        xs = [x // f for x in plan.xs[j0:j1]]
        n = len(xs)
        if n > 2 and xs[-1] - xs[-2] != xs[1] - xs[0]:
            n -= 1  # the last window sits flush with the edge, off the stride grid
        d = xs[1] - xs[0] if n > 1 else tw
        if 2 * d < tw:  # overlap over half a window: one add per window
            n = 0
        for q in range(min(n, 2)):
            cnt = len(range(q, n, 2))
            off = acc.storage_offset() + y * acc.stride(0) + xs[q]
            view = acc.as_strided((cnt, th, tw), (2 * d, acc.stride(0), 1), off)
            view += w[t + q : t + n : 2]
        for i in range(n, len(xs)):
            acc[y : y + th, xs[i] : xs[i] + tw] += w[t + i]
        t += len(xs)


def _run(
    det, a, b, out: Path, cfg: PredictConfig, dev: torch.device, amp: bool, cl: bool,
    progress: bool, stats: dict | None,
) -> dict[str, Path]:  # fmt: skip
    t_start = time.perf_counter()
    timer = _Timer()
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
    i64 = {"device": dev, "dtype": torch.long}

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
    chunk = chunk_rows(a)
    ring_rows = plan.ring_rows(chunk)
    # window pixel → ring row / raster column, built on the device from the window's start
    ys_dev, xs_dev = torch.tensor(plan.ys, **i64), torch.tensor(plan.xs, **i64)
    row_off, col_off = torch.arange(th, **i64), torch.arange(tw, **i64)
    acc2 = torch.zeros(rows, plan.width, **f32)
    acc3 = torch.zeros(rows // 2, plan.width // 2, **f32) if with_3d else None
    done2 = torch.empty(rows, plan.width, dtype=torch.uint8, device=dev)  # quantised finished rows
    shapes = plan.device_buffers(a.count, chunk)
    u8 = {"device": dev, "dtype": torch.uint8}
    rings = [torch.empty(shapes[k], **u8) for k in ("ring_before", "ring_after")]
    xs_in = [torch.empty(shapes[k], **u8) for k in ("before", "after")]
    cuda = dev.type == "cuda"
    pin = cuda
    side = torch.cuda.Stream(dev) if cuda else None  # host → device copies overlap compute
    for ring in rings if cuda else ():
        ring.record_stream(side)
    uploaded = torch.cuda.Event() if cuda else None
    gathered = torch.cuda.Event() if cuda else None
    gpu_marks: list = []  # (start, end) events per batch when stats are asked for
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
        readers = [_ChunkReader(s, plan, chunk, pin, timer) for s in (a, b)]
        masked = any(r.mask for r in readers)
        writer = ThreadPoolExecutor(1, thread_name_prefix="cd3d-write")
        blocks = _BlockWriter(d2, d3, plan, H, W, timer)  # used by the writer thread only
        for pool in (writer, *(r.pool for r in readers)):  # shut down before the files close
            stack.callback(pool.shutdown, wait=True, cancel_futures=True)
        n_chunks = -(-plan.height // chunk)
        stride = plan.ys[1] - plan.ys[0] if len(plan.ys) > 1 else th
        ahead = max(1, -(-cfg.prefetch * stride // chunk))  # chunks read ahead of the ring
        reads: dict[int, tuple[Future, Future]] = {}
        masks: dict[int, np.ndarray] = {}
        writes: deque[Future] = deque()
        state = {"submitted": 0, "loaded": 0, "gathered": False}  # chunks asked for / in the ring
        base, done_rows = 0, 0  # first pixel row held in the accumulators; rows of windows done

        def upload(r: int) -> None:
            """Put every chunk that window row ``r`` needs into the device ring (side stream)."""
            need = min(n_chunks, (plan.ys[r] + th - 1) // chunk + 1)
            while state["submitted"] < min(n_chunks, need + ahead):
                c = state["submitted"]
                reads[c] = (readers[0].submit(c), readers[1].submit(c))
                state["submitted"] += 1
            if state["loaded"] >= need:
                return
            if cuda and state["gathered"]:  # slots are reused once the last batch has cut them
                side.wait_event(gathered)
            for c in range(state["loaded"], need):
                with timer("wait_read_s"):
                    (ta, oka), (tb, okb) = (f.result() for f in reads.pop(c))
                if masked:
                    masks[c] = oka if okb is None else okb if oka is None else oka & okb
                slot = (c * chunk) % ring_rows
                with torch.cuda.stream(side) if cuda else contextlib.nullcontext():
                    for ring, t in zip(rings, (ta, tb)):
                        ring[:, slot : slot + chunk].copy_(t, non_blocking=pin)
            state["loaded"] = need
            if cuda:
                uploaded.record(side)

        def strip_mask(y: int, end: int) -> np.ndarray | None:
            if not masked:
                return None
            cs = range(y // chunk, (end - 1) // chunk + 1)
            ok = np.concatenate([masks[c][max(y - c * chunk, 0) : end - c * chunk] for c in cs])
            for c in [c for c in masks if (c + 1) * chunk <= end]:
                del masks[c]
            return ok

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
            for c in range(0, plan.width, CHUNK):  # quantise on the device, chunk by chunk
                p = acc2[o : o + n, c : c + CHUNK]
                q = (p >= cfg.threshold) if cfg.output_2d == "mask" else torch.round(p * 254)
                done2[:n, c : c + CHUNK] = q
            # one contiguous copy per map (a strided copy into pinned memory would stage through
            # pageable memory and block until the device is idle)
            v2.copy_(done2[:n], non_blocking=pin)
            if with_3d:
                hv.copy_(acc3[o // 2 : (o + n) // 2], non_blocking=pin)
            ev = None
            if pin:  # the writer waits on the event, not the main thread
                ev = torch.cuda.Event()
                ev.record()
            writes.append(writer.submit(blocks.add, v2, hv, strip_mask(y, end), ev))
            with timer("wait_write_s"):
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

        for bi, (k0, k1) in enumerate(plan.batches):
            nb = k1 - k0
            with timer("upload_s"):
                upload((k1 - 1) // m)  # normally done during the previous batch
            if stats is not None and cuda:
                gpu_marks.append([torch.cuda.Event(enable_timing=True) for _ in range(2)])
                gpu_marks[-1][0].record()
            with timer("cut_s"):
                if cuda:
                    torch.cuda.current_stream(dev).wait_event(uploaded)
                gy, gx = win_row[k0:k1], win_col[k0:k1]  # device indices: no host sync
                ridx = ((ys_dev[gy][:, None] + row_off) % ring_rows)[:, :, None]
                cidx = (xs_dev[gx][:, None] + col_off)[:, None, :]
                for ring, x in zip(rings, xs_in):
                    x[:nb].copy_(ring[:, ridx, cidx].transpose(0, 1))
                if cuda:
                    gathered.record()
                state["gathered"] = True
            run = plan.batch if cfg.compile else nb  # compiled: one static batch shape
            with timer("infer_s"):
                prob, hgt = infer(det, xs_in[0][:run], xs_in[1][:run], cfg.tta, amp, dev, cl)
            with timer("blend_s"):
                w2 = prob[:nb].float() * wy[gy][:, :, None] * wx[gx][:, None, :]
                w3 = None
                if with_3d:
                    w3 = hgt[:nb].float() * wy3[gy][:, :, None] * wx3[gx][:, None, :]
                _blend_strided(acc2, w2, plan, k0, k1, base, 1)
                if with_3d:
                    _blend_strided(acc3, w3, plan, k0, k1, base, 2)
            if gpu_marks:
                gpu_marks[-1][1].record()
            bar.update(nb)
            if bi + 1 < len(plan.batches):  # read ahead while this batch runs
                with timer("upload_s"):
                    upload((plan.batches[bi + 1][1] - 1) // m)
            with timer("finish_s"):
                while done_rows < len(plan.ys) and (done_rows + 1) * m <= k1:
                    finish(done_rows)
                    done_rows += 1
                    nxt = plan.ys[done_rows] if done_rows < len(plan.ys) else base
                    if nxt > base:
                        shift(nxt - base)
                        base = nxt
        t_loop = time.perf_counter()
        writes.append(writer.submit(blocks.close))
        with timer("wait_write_s"):
            while writes:
                writes.popleft().result()
    bar.close()
    if stats is not None:
        t_end = time.perf_counter()
        stats.update({k: round(v, 4) for k, v in sorted(timer.s.items())})
        stats.update(wall_s=round(t_end - t_start, 4), drain_s=round(t_end - t_loop, 4))
        stats.update(chunk_rows=chunk, ring_rows=ring_rows, batches=len(plan.batches))
        if gpu_marks:
            torch.cuda.synchronize(dev)
            busy = sum(s.elapsed_time(e) for s, e in gpu_marks) / 1e3
            span = gpu_marks[0][0].elapsed_time(gpu_marks[-1][1]) / 1e3
            stats.update(gpu_batches_s=round(busy, 4), gpu_span_s=round(span, 4))
    return paths
