"""Large-raster predict: time and peak RSS for a small and a 16× larger raster, side by side.

For each size a subprocess synthesises the pair strip by strip, then another runs the tiled predict
with the per-pixel model (so the numbers measure the tiling/IO machinery rather than a network) and
reports its own peak RSS.
Goal: peak RSS grows ≤ 1.2× from 4096² to 16384² and time grows about linearly with area (16×).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit


def child_synth(size: int, out: str) -> None:
    from cd3d.data.synth import synth_pair

    synth_pair(Path(out), size, seed=1, with_targets=False)


def child(size: int, tile: int, overlap: int, pair: str) -> None:
    import torch

    from cd3d.engine.predict import PredictConfig, predict_rasters
    from cd3d.models import ChangeDetector

    torch.set_num_threads(2)
    det = ChangeDetector("pixel_mlp", {"hidden": 16})
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    predict_rasters(
        det,
        Path(pair) / "before.tif",
        Path(pair) / "after.tif",
        Path(pair) / "out",
        PredictConfig(tile=tile, overlap=overlap, batch_size=2),
        progress=False,
    )
    pred_s = time.perf_counter() - t
    print(
        json.dumps(
            {
                "size": size,
                "predict_s": pred_s,
                "rss_before_predict_mib": base,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--child", type=int, default=0)
    p.add_argument("--child-synth", type=int, default=0)
    p.add_argument("--pair", default="")
    p.add_argument("--tile", type=int, default=400)
    p.add_argument("--overlap", type=int, default=64)
    a = p.parse_args(argv)
    if a.child_synth:
        child_synth(a.child_synth, a.pair)
        return
    if a.child:
        child(a.child, a.tile, a.overlap, a.pair)
        return
    small, large = (512, 2048) if a.quick else (4096, 16384)
    out = {}
    for size in (small, large):
        with tempfile.TemporaryDirectory() as d:  # synthesis and prediction in separate processes
            subprocess.run(
                [sys.executable, __file__, "--child-synth", str(size), "--pair", d], check=True
            )
            r = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    str(size),
                    "--tile",
                    str(a.tile),
                    "--overlap",
                    str(a.overlap),
                    "--pair",
                    d,
                ],
                capture_output=True,
                text=True,
                check=True,
            )
        out[size] = json.loads(r.stdout.strip().splitlines()[-1])
    s, lg = out[small], out[large]
    res = {
        "small": small,
        "large": large,
        "tile": a.tile,
        "overlap": a.overlap,
        "model": "pixel_mlp",
        "small_predict_s": round(s["predict_s"], 2),
        "large_predict_s": round(lg["predict_s"], 2),
        "small_peak_rss_mib": round(s["peak_rss_mib"], 1),
        "large_peak_rss_mib": round(lg["peak_rss_mib"], 1),
        "rss_before_predict_mib": round(lg["rss_before_predict_mib"], 1),
        "area_ratio": (large / small) ** 2,
        "time_ratio": round(lg["predict_s"] / s["predict_s"], 2),
        "ratio": round(lg["peak_rss_mib"] / s["peak_rss_mib"], 3),
        "ratio_meaning": "peak RSS large / small (goal <= 1.2)",
    }
    emit({"benchmark": "predict_scaling", "package": "cd3d", "device": "cpu", "results": res})


if __name__ == "__main__":
    main()
