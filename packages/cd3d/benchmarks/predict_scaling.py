"""Large-raster predict: end-to-end tiles/s against the model alone, and peak memory, side by side.

For each size (4096² and 16384²; ``--quick``: 512² and 2048²) a subprocess writes a synthetic pair
(one rendered 2048² scene repeated as a mosaic, deflate-compressed and tiled like real
orthophotos), then another subprocess:

1. times the model alone on device-resident uint8 batches through the same ``infer`` call that
   predict uses (``--batch`` tiles of ``--tile``², bf16 + channels_last on CUDA);
2. runs ``predict_rasters`` on the pair twice (the first run pays cuDNN autotuning) and reports the
   second run's tiles/s, with peak host RSS and peak CUDA memory;
3. runs it a third time with the per-stage timers on (``predict_stages``: seconds per stage summed
   over threads, and on CUDA the device time of the batches); this run is not in the ratio.

``--compile`` adds a third subprocess at the largest size, on the same pair: the same steps with
the network under ``torch.compile`` (its first call's seconds include the compilation).

On CUDA the network is ``--model`` (siam_unet, ResNet-18); on CPU it is the per-pixel
``pixel_mlp`` so the numbers measure the tiling/IO machinery. FLOPs per tile come from
``torch.utils.flop_counter`` (one multiply-add = 2 FLOPs) and the fraction of the GPU's bf16 peak
uses ``--peak-tflops`` (default 989.5: the H100/H200 SXM dense bf16 datasheet figure).
Goals: end-to-end / model-only ≥ 0.7 and peak memory large / small ≤ 1.2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit


def child_synth(size: int, out: str, block: int = 2048) -> None:
    """Write before/after ``size``² by repeating one rendered ``block``² scene."""
    import numpy as np
    import rasterio
    from rasterio.transform import Affine
    from rasterio.windows import Window

    from cd3d.data.io import atomic_path
    from cd3d.data.synth import CRS_SYNTH, GSD, ORIGIN, render

    block = min(block, size)
    s = render(1, 0, 0, block, block)
    prof = dict(
        driver="GTiff", width=size, height=size, count=3, dtype="uint8", crs=CRS_SYNTH, tiled=True,
        blockxsize=256, blockysize=256, compress="deflate", zlevel=1, num_threads="ALL_CPUS",
        transform=Affine(GSD, 0, ORIGIN[0], 0, -GSD, ORIGIN[1]),
    )  # fmt: skip
    for key in ("before", "after"):
        row = np.tile(s[key], (1, 1, size // block))
        with atomic_path(Path(out) / f"{key}.tif") as tmp, rasterio.open(tmp, "w", **prof) as dst:
            for y in range(0, size, block):
                dst.write(row, window=Window(0, y, size, block))


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(size: int, a: argparse.Namespace) -> None:
    import torch

    from cd3d.engine.infer import infer
    from cd3d.engine.predict import PredictConfig, plan_tiles, predict_rasters, prepare_detector
    from cd3d.models import ChangeDetector

    cuda = a.device == "cuda"
    torch.manual_seed(0)
    if cuda:
        det = ChangeDetector(a.model, {"encoder_name": a.encoder})
    else:
        torch.set_num_threads(2)
        det = ChangeDetector("pixel_mlp", {"hidden": 16})
    cfg = PredictConfig(
        tile=a.tile, overlap=a.overlap, batch_size=a.batch, device=a.device, compile=a.compile
    )
    dev = torch.device(a.device)
    from torch.utils.flop_counter import FlopCounterMode

    det = det.to(dev).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:  # before compiling
        x = torch.rand(1, 3, a.tile, a.tile, device=dev)
        det(x, x)
    det, dev, amp, cl = prepare_detector(det, cfg)
    res: dict = {"size": size, "amp_bf16": amp, "channels_last": cl, "compile": a.compile}
    res["gflop_per_tile"] = round(fc.get_total_flops() / 1e9, 2)

    sync = torch.cuda.synchronize if cuda else (lambda: None)
    gen = torch.Generator(device=dev).manual_seed(0)
    tb = torch.randint(
        0, 256, (a.batch, 3, a.tile, a.tile), dtype=torch.uint8, device=dev, generator=gen
    )
    ta = torch.randint(
        0, 256, (a.batch, 3, a.tile, a.tile), dtype=torch.uint8, device=dev, generator=gen
    )
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    infer(det, tb, ta, False, amp, dev, cl)  # compiled: this call pays the compilation
    sync()
    res["first_call_s"] = round(time.perf_counter() - t, 2)
    for _ in range(2):
        infer(det, tb, ta, False, amp, dev, cl)
    sync()
    iters = 20 if cuda else 3
    t = time.perf_counter()
    for _ in range(iters):
        infer(det, tb, ta, False, amp, dev, cl)
    sync()
    res["model_only_tiles_per_s"] = round(a.batch * iters / (time.perf_counter() - t), 1)
    if cuda:
        res["model_only_peak_cuda_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    plan = plan_tiles(size, size, cfg)
    res["accumulator_rows"] = plan.rows
    res["batches"] = len(plan.batches)

    pair = Path(a.pair)
    n_tiles = plan.windows
    res["tiles"] = n_tiles
    runs = []
    for k in range(2 if cuda else 1):
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        predict_rasters(
            det, pair / "before.tif", pair / "after.tif", pair / f"out{k}", cfg, progress=False
        )
        runs.append(time.perf_counter() - t)
    res["predict_s"] = [round(r, 2) for r in runs]
    res["end_to_end_tiles_per_s"] = round(n_tiles / runs[-1], 1)
    res["peak_rss_mib"] = round(_peak_rss_mib(), 1)
    if cuda:
        res["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        res["gpu"] = torch.cuda.get_device_name()
    stages: dict = {}  # one more run, not timed above, with the pipeline's per-stage timers
    predict_rasters(
        det, pair / "before.tif", pair / "after.tif", pair / "out_stages", cfg, progress=False,
        stats=stages,
    )  # fmt: skip
    res["predict_stages"] = stages
    print(json.dumps(res))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--model", default="siam_unet")
    p.add_argument("--encoder", default="resnet18")
    p.add_argument("--tile", type=int, default=400)
    p.add_argument("--overlap", type=int, default=64)
    p.add_argument(
        "--batch", type=int, default=0, help="tiles per batch (default: 32 on CUDA, 2 on CPU)"
    )
    p.add_argument(
        "--compile", action="store_true", help="also run the largest size compiled (side by side)"
    )
    p.add_argument(
        "--compile-timeout", type=float, default=None, help="seconds before the compiled run stops"
    )
    p.add_argument(
        "--peak-tflops", type=float, default=989.5, help="dense bf16 peak used for the fraction"
    )
    p.add_argument("--sizes", default="", help="comma-separated sizes instead of the defaults")
    p.add_argument("--keep-pairs", default="", help="folder that keeps (and reuses) the pairs")
    p.add_argument("--child", type=int, default=0)
    p.add_argument("--child-synth", type=int, default=0)
    p.add_argument("--pair", default="")
    a = p.parse_args(argv)
    a.batch = a.batch or (32 if a.device == "cuda" else 2)
    if a.child_synth:
        child_synth(a.child_synth, a.pair)
        return
    if a.child:
        child(a.child, a)
        return
    sizes = (
        [int(s) for s in a.sizes.split(",")]
        if a.sizes
        else ([512, 2048] if a.quick else [4096, 16384])
    )
    out: dict[int, dict] = {}
    compiled: dict[int, dict] = {}
    passed = [f"--{k}={v}" for k, v in (("device", a.device), ("model", a.model), ("encoder", a.encoder),
                                        ("tile", a.tile), ("overlap", a.overlap), ("batch", a.batch))]  # fmt: skip

    def run_child(size: int, pair: str, extra: list[str], timeout: float | None = None) -> dict:
        try:
            r = subprocess.run(
                [sys.executable, __file__, "--child", str(size), "--pair", pair, *passed, *extra],
                capture_output=True, text=True, timeout=timeout,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            print(f"{extra} at {size}: stopped after {timeout} s", file=sys.stderr, flush=True)
            return {"timed_out_s": timeout}
        if r.returncode:
            sys.stderr.write(r.stderr)
            raise SystemExit(r.returncode)
        res = json.loads(r.stdout.strip().splitlines()[-1])
        print(json.dumps(res), file=sys.stderr, flush=True)
        return res

    for size in sizes:
        with contextlib.ExitStack() as stack:  # synthesis and prediction in separate processes
            if a.keep_pairs:
                d = str(Path(a.keep_pairs) / str(size))
                Path(d).mkdir(parents=True, exist_ok=True)
            else:
                d = stack.enter_context(tempfile.TemporaryDirectory())
            t = time.perf_counter()
            if not (Path(d) / "after.tif").is_file():
                subprocess.run(
                    [sys.executable, __file__, "--child-synth", str(size), "--pair", d], check=True
                )
            synth_s = time.perf_counter() - t
            out[size] = run_child(size, d, []) | {"synth_s": round(synth_s, 1)}
            if a.compile and size == sizes[-1]:  # eager and compiled on the same pair
                compiled[size] = run_child(size, d, ["--compile"], a.compile_timeout)
    small, large = out[sizes[0]], out[sizes[-1]]
    e2e, model = large["end_to_end_tiles_per_s"], large["model_only_tiles_per_s"]
    res = {
        "model": a.model if a.device == "cuda" else "pixel_mlp",
        "tile": a.tile, "overlap": a.overlap, "batch": a.batch,
        "sizes": sizes, "per_size": out,
        "ratio": round(e2e / model, 3),
        "ratio_meaning": f"end-to-end / model-only tiles/s at {sizes[-1]}² (goal >= 0.7)",
        "peak_rss_ratio": round(large["peak_rss_mib"] / small["peak_rss_mib"], 3),
        "time_ratio": round(large["predict_s"][-1] / small["predict_s"][-1], 2),
        "area_ratio": (sizes[-1] / sizes[0]) ** 2,
    }  # fmt: skip
    if a.device == "cuda":
        res["peak_cuda_ratio"] = round(large["peak_cuda_mib"] / small["peak_cuda_mib"], 3)
        flops = large["gflop_per_tile"] * 1e9
        res["peak_tflops_used"] = a.peak_tflops
        res["model_only_tflops"] = round(flops * model / 1e12, 1)
        res["model_only_fraction_of_peak"] = round(flops * model / (a.peak_tflops * 1e12), 4)
        res["end_to_end_fraction_of_peak"] = round(flops * e2e / (a.peak_tflops * 1e12), 4)
    if compiled and "timed_out_s" in compiled[sizes[-1]]:
        res["compiled"] = compiled[sizes[-1]]
    elif compiled:
        c = compiled[sizes[-1]]
        res["compiled"] = {
            "per_size": c,
            "end_to_end_vs_eager": round(c["end_to_end_tiles_per_s"] / e2e, 3),
            "model_only_vs_eager": round(c["model_only_tiles_per_s"] / model, 3),
            "ratio": round(c["end_to_end_tiles_per_s"] / c["model_only_tiles_per_s"], 3),
            "first_call_s": c["first_call_s"],
            "eager_first_call_s": large["first_call_s"],
            "meaning": f"--compile at {sizes[-1]}² against eager on the same pair",
        }
    emit({"benchmark": "predict_scaling", "package": "cd3d", "device": a.device, "results": res})


if __name__ == "__main__":
    main()
