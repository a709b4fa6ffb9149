"""End-to-end CPU demo: synth → train → eval (+ baselines) → large-raster predict → volume."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import rasterio

from ..data.dataset import ChangeDataset
from ..data.io import atomic_path, write_json
from ..data.synth import synth_dataset, synth_pair
from ..eval.baselines import ColourDiff, NoChange
from ..eval.evaluate import evaluate
from ..eval.metrics import ChangeMetrics
from ..eval.volume import volume_report
from .checkpoint import load_detector
from .config import load_config
from .predict import NODATA_2D, NODATA_3D, PredictConfig, predict_rasters
from .train import train


def raster_metrics(pred_2d: Path, pred_3d: Path, truth_2d: Path, truth_3d: Path) -> dict:
    """Metrics of a large prediction against its truth rasters (strip by strip)."""
    import torch

    m = ChangeMetrics()
    with (
        rasterio.open(pred_2d) as p2,
        rasterio.open(truth_2d) as t2,
        rasterio.open(pred_3d) as p3,
        rasterio.open(truth_3d) as t3,
    ):
        step = 512
        for y in range(0, p2.height, step):
            w = rasterio.windows.Window(0, y, p2.width, min(step, p2.height - y))
            w3 = rasterio.windows.Window(0, y // 2, p3.width, (min(step, p2.height - y) + 1) // 2)
            pp, tt = p2.read(1, window=w), t2.read(1, window=w)
            hp, ht = p3.read(1, window=w3), t3.read(1, window=w3)
            ok = pp != NODATA_2D
            pm = torch.from_numpy(((pp >= 127) & ok).astype(np.int64))[None]
            m.update(
                pm,
                torch.from_numpy(tt.astype(np.int64))[None],
                torch.from_numpy(np.where(hp == NODATA_3D, 0, hp))[None],
                torch.from_numpy(ht)[None],
            )
    return m.compute()


def overview_png(before: Path, pred_2d: Path, pred_3d: Path, path: Path, factor: int = 4) -> None:
    """Downsampled before image, 2D probability and 3D change of a large prediction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with rasterio.open(before) as b, rasterio.open(pred_2d) as p2, rasterio.open(pred_3d) as p3:
        img = b.read(out_shape=(3, b.height // factor, b.width // factor)).transpose(1, 2, 0)
        prob = p2.read(1, out_shape=(p2.height // factor, p2.width // factor)) / 254.0
        h = p3.read(
            1, out_shape=(p3.height // (factor // 2), p3.width // (factor // 2)), masked=True
        )
    lim = max(float(np.abs(h).max()), 1.0)
    fig, ax = plt.subplots(1, 3, figsize=(15, 5))
    ax[0].imshow(img)
    ax[0].set_title("before")
    ax[1].imshow(prob, cmap="magma", vmin=0, vmax=1)
    ax[1].set_title("2D change probability")
    im = ax[2].imshow(h, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax[2].set_title("3D change (m)")
    fig.colorbar(im, ax=ax[2], label="elevation change (m)")
    for a in ax:
        a.set_xticks([])
        a.set_yticks([])
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=70, bbox_inches="tight")
    plt.close(fig)


def run_demo(out: str | Path, quick: bool = False, seed: int = 0) -> dict:
    """Run every stage into ``out`` and return (and write ``summary.json``) timings and metrics."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    t0 = time.perf_counter()

    def tick(name: str, start: float) -> float:
        now = time.perf_counter()
        times[name] = round(now - start, 1)
        return now

    t = t0
    n = (6, 2, 3) if quick else (128, 8, 16)
    tile = 64 if quick else 128
    root = synth_dataset(out / "data", seed, *n, tile=tile)
    big = synth_pair(out / "large", 256 if quick else 2048, seed + 1)
    t = tick("synth", t)
    sets = [f"data.root={root}", f"out={out / 'run'}", f"seed={seed}"]
    sets += ["trainer.max_epochs=1", "data.batch_size=4"] if quick else ["trainer.max_epochs=30"]
    cfg = load_config("demo.yaml", sets)
    cfg["trainer"]["enable_progress_bar"] = False
    res = train(cfg)
    t = tick("train", t)
    det = load_detector(res["best_f1"])
    metrics = {"siam_unet": evaluate(det, root, "test", out / "eval")}
    metrics["no_change"] = evaluate(NoChange(), root, "test")
    metrics["colour_diff"] = evaluate(ColourDiff.fit(ChangeDataset(root, "train")), root, "test")
    t = tick("eval", t)
    pred = predict_rasters(
        det,
        big["before"],
        big["after"],
        out / "predict",
        PredictConfig(tile=64 if quick else 400, overlap=16 if quick else 64),
        progress=False,
    )
    t = tick("predict", t)
    large = raster_metrics(pred["change_2d"], pred["change_3d"], big["mask"], big["dh"])
    vol = volume_report(
        pred["change_3d"],
        out / "predict" / "regions.geojson",
        min_area=4.0,
        change_2d=pred["change_2d"],
    )
    overview_png(
        big["before"], pred["change_2d"], pred["change_3d"], out / "predict" / "overview.png"
    )
    tick("volume_and_figures", t)
    times["total"] = round(time.perf_counter() - t0, 1)
    keys = ("f1", "iou", "rmse", "crmse_3d_nonzero", "crmse_2d_label")
    summary = {
        "test_metrics": {k: {m: round(v[m], 4) for m in keys} for k, v in metrics.items()},
        "large_raster": {"size": 256 if quick else 2048, **{m: round(large[m], 4) for m in keys}},
        "volume": vol["summary"],
        "seconds": times,
        "files": {
            "metrics": str(out / "eval" / "metrics.json"),
            "figure": str(out / "eval" / "figure.png"),
            "change_2d": str(pred["change_2d"]),
            "change_3d": str(pred["change_3d"]),
            "regions": str(out / "predict" / "regions.geojson"),
            "overview": str(out / "predict" / "overview.png"),
            "checkpoint": res["best_f1"],
        },
    }
    write_json(out / "summary.json", summary)
    return summary
