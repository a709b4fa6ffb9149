"""End-to-end demo: synthetic plates -> SSL -> temporal model -> ranking -> report."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from spheroid_rank.data.io import write_csv, write_json
from spheroid_rank.data.metadata import load_experiment
from spheroid_rank.data.synth import make_synthetic_experiment
from spheroid_rank.engine.checkpoint import load_model
from spheroid_rank.engine.config import load_demo_config
from spheroid_rank.engine.embed import embeddings_frame, extract
from spheroid_rank.engine.rank import rank_experiment
from spheroid_rank.engine.train import train_ssl
from spheroid_rank.eval.morphology import morphology_table
from spheroid_rank.eval.probe import knn_accuracy, linear_probe


def run_demo(out: Path, seed: int = 0, epochs: int | None = None, preset: str = "easy") -> int:
    """Run the whole pipeline on a synthetic experiment and print the numbers."""
    cfg = load_demo_config(preset)
    t0 = time.perf_counter()
    times: dict[str, float] = {}

    def lap(name: str) -> None:
        times[name] = round(time.perf_counter() - t0 - sum(times.values()), 1)
        print(f"[{time.perf_counter() - t0:6.1f} s] {name} done", flush=True)

    out.mkdir(parents=True, exist_ok=True)
    s = cfg["synth"]
    make_synthetic_experiment(
        out / "data",
        seed=seed,
        n_plates=s["plates"],
        days=tuple(s["days"]),
        size=s["size"],
        preset=s["preset"],
    )
    meta = load_experiment(out / "data")
    lap("synth")
    morph = morphology_table(meta, overlay_dir=None)
    write_csv(out / "morphology.csv", morph)
    lap("morphology")
    ssl = dataclasses.replace(
        cfg["ssl"], seed=seed, **({} if epochs is None else {"epochs": epochs})
    )
    path = train_ssl(meta, out / "ssl", ssl, progress=False)
    lap("ssl")
    model, scfg = load_model(path)
    emb = extract(model, meta, scfg)
    write_csv(out / "embeddings.csv", embeddings_frame(meta, emb))
    lap("embed")
    score_cfg = dataclasses.replace(cfg["score"], seed=seed)
    summary = rank_experiment(
        meta,
        emb,
        out / "rank",
        score_cfg,
        morph=morph,
        title=f"spheroid-rank demo (synthetic plates, {preset} preset)",
    )
    lap("rank+report")
    probe = linear_probe(meta, emb, seed=seed)
    knn = knn_accuracy(meta, emb, seed=seed)
    lap("evaluate")
    total = round(time.perf_counter() - t0, 1)
    result = {
        "spearman_ssl": summary["spearman_vs_truth"],
        "spearman_morphology": summary["morphology_spearman_vs_truth"],
        "z_prime_ssl": summary["z_prime"],
        "z_prime_morphology": summary["morphology_z_prime"],
        "linear_probe_accuracy": {
            str(r["per_class"]): round(r["accuracy"], 3) for r in probe.to_dict("records")
        },
        "knn_accuracy": round(knn["accuracy"], 3),
        "seconds": total,
        "stage_seconds": times,
    }
    write_json(out / "demo_result.json", result)
    print(probe.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(
        f"Spearman vs true efficacy: SSL ranking {result['spearman_ssl']:.3f} | "
        f"morphology-only ranking {result['spearman_morphology']:.3f}"
    )
    print(
        f"Z' (untreated vs single dose): SSL {result['z_prime_ssl']:.3f} | "
        f"morphology {result['z_prime_morphology']:.3f}"
    )
    print(f"report: {out / 'rank' / 'report.html'}  total {total:.1f} s")
    print(json.dumps(result))
    return 0
