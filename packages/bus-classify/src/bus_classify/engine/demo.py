"""End-to-end CPU demo on synthetic data (`bus-classify demo --out DIR`)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from bus_classify.data.io import write_csv, write_json
from bus_classify.data.sources import discover
from bus_classify.data.split import make_split, read_csv
from bus_classify.data.synth import write_synthetic
from bus_classify.engine.config import load_config
from bus_classify.engine.train import train
from bus_classify.eval.evaluate import evaluate
from bus_classify.eval.gradcam import gradcam_overlays
from bus_classify.eval.zeroshot import zero_shot
from bus_classify.models.tiny_vlm import build_tiny_clip, build_tiny_llava

log = logging.getLogger(__name__)


def run_demo(
    out: str | Path, n: int = 300, seed: int = 0, epochs: int | None = None, threads: int = 1
) -> dict:
    """synth -> split -> train CNN + micro Swin -> eval (calibrated) -> Grad-CAM -> zero-shot.

    ``threads`` sets torch's intra-op threads; one thread avoids the heavy slow-down of many
    small Swin kernels when the two cores are shared with other processes.
    """
    import torch

    torch.set_num_threads(max(1, threads))

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    times: dict[str, float] = {}
    summary: dict = {"n_images": n}

    def lap(name: str) -> None:
        times[name] = round(time.perf_counter() - t0 - sum(times.values()), 1)
        log.info("demo: %s done (%.1f s)", name, times[name])

    data = out / "data"
    if not data.exists():
        summary["synth"] = write_synthetic(data, n=n, size=96, seed=seed)
    rows, report = make_split(discover(data), seed=seed)
    write_csv(out / "split.csv", rows)
    summary["split"] = report.counts
    summary["duplicate_groups"] = len(report.duplicate_groups)
    summary["duplicate_leaks"] = len(report.leaks)
    lap("synth+split")
    torch.manual_seed(seed)
    test_refs = [r["path"] for r in read_csv(out / "split.csv") if r["split"] == "test"]
    for name, cfg_name in (("cnn", "cnn_demo"), ("swin", "swin_demo")):
        cfg = load_config(cfg_name, {"seed": seed, **({"epochs": epochs} if epochs else {})})
        best = train(
            cfg, str(out / "split.csv"), out / name, device="cpu", resume=True, progress=False
        )
        lap(f"train {name}")
        m = evaluate(best, out / "split.csv", out / name / "eval", tta=True)
        gradcam_overlays(best, test_refs[:2] + test_refs[-2:], out / name / "gradcam")
        summary[name] = {k: m[k] for k in m if k != "details"}
        summary[name]["temperature"] = m["details"]["temperature"]
        lap(f"eval+gradcam {name}")
    vlm = out / "vlm"
    clip_dir = build_tiny_clip(vlm / "tiny-clip")
    llava_dir = build_tiny_llava(vlm / "tiny-llava")
    zc = zero_shot(clip_dir, out / "split.csv", out / "zero_shot_clip")
    zl = zero_shot(
        llava_dir, out / "split.csv", out / "zero_shot_llava", limit=12, max_new_tokens=16
    )
    summary["zero_shot_clip_tiny_random"] = {k: zc[k] for k in ("accuracy", "f1_macro", "roc_auc")}
    summary["zero_shot_llava_tiny_random"] = {
        "accuracy": zl["accuracy"],
        "unparsed": zl["details"]["unparsed"],
        "coverage": zl["details"]["coverage"],
    }
    lap("zero-shot")
    summary["seconds"] = times
    summary["total_seconds"] = round(time.perf_counter() - t0, 1)
    write_json(out / "demo_summary.json", summary)
    return summary
