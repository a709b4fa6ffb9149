"""Ranking quality of each representation on the ``easy`` and ``hard`` synthetic presets.

For every (preset, seed): render 2 plates, then score and rank the conditions from
morphology features, a random-init network, each SSL method trained with the package's
``train_ssl`` (SimCLR, BYOL, DINO, MAE) and a supervised ResNet-18 trained on the group labels
(penultimate features). Reported per representation, mean and sd over seeds: Spearman of
the condition medians with the true efficacy, recall of the true top-k conditions among the
predicted top-k, linear-probe accuracy at 10/20/30/all examples per class, and per drug the
fraction of its top-dose wells scored above the 95th percentile of untreated wells
("detected"; below 0.5 counts as missed). The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

REPRESENTATIONS = ("morphology", "random_init", "simclr", "byol", "dino", "mae", "supervised")


def topk_recall(ranking: pd.DataFrame, k: int) -> float:
    """Share of the k truly most effective conditions that the ranking puts in its top k."""
    truth = ranking.sort_values("true_efficacy", ascending=False)["condition"][:k]
    return len(set(truth) & set(ranking["condition"][:k])) / k


def detection(wells: pd.DataFrame) -> dict[str, float]:
    """Per single drug: share of its highest-dose wells scored above untreated's 95th pct."""
    thr = float(np.quantile(wells.loc[wells["group"] == "untreated", "score"], 0.95))
    single = wells[(wells["drug"] != "") & ~wells["drug"].str.contains(r"\+")]
    out = {}
    for drug, g in single.groupby("drug"):
        conc = pd.to_numeric(g["concentration"])
        top = g[conc == conc.max()]
        out[drug] = float((top["score"] > thr).mean())
    return out


def evaluate(meta: pd.DataFrame, emb: np.ndarray, score_cfg, seed: int, k: int) -> dict:
    from spheroid_rank.eval.probe import linear_probe
    from spheroid_rank.eval.ranking import rank_conditions, truth_spearman
    from spheroid_rank.eval.scores import score_wells

    wells = score_wells(meta, emb, score_cfg)
    ranking = rank_conditions(wells, n_boot=200, seed=seed)
    probe = linear_probe(meta, emb, seed=seed)
    return {
        "spearman": truth_spearman(ranking),
        "topk_recall": topk_recall(ranking, k),
        "probe": {str(r["per_class"]): r["accuracy"] for r in probe.to_dict("records")},
        "detected": detection(wells),
    }


def run_case(
    preset: str,
    seed: int,
    device: str,
    epochs: int,
    quick: bool,
    root: str,
    threads: int,
    batch_size: int = 64,
) -> dict:
    """All representations on one synthetic experiment."""
    import dataclasses

    import torch

    torch.set_num_threads(threads)
    from spheroid_rank.data.metadata import load_experiment
    from spheroid_rank.data.synth import make_synthetic_experiment
    from spheroid_rank.engine.checkpoint import load_model
    from spheroid_rank.engine.config import ScoreConfig, SSLConfig
    from spheroid_rank.engine.embed import extract
    from spheroid_rank.engine.supervised import train_supervised
    from spheroid_rank.engine.train import train_ssl
    from spheroid_rank.eval.morph_features import morphology_features
    from spheroid_rank.eval.morphology import morphology_table
    from spheroid_rank.models.ssl import build_method

    t0 = time.perf_counter()
    work = Path(root) / f"{preset}_{seed}"
    make_synthetic_experiment(
        work / "data",
        seed=seed,
        n_plates=1 if quick else 2,
        size=64 if quick else 96,
        preset=preset,
    )
    meta = load_experiment(work / "data")
    k = 5
    res: dict = {}
    seconds: dict = {}
    lap = time.perf_counter()
    morph = morphology_table(meta)
    feats = morphology_features(
        meta[["plate", "well", "day"]].merge(
            morph, on=["plate", "well", "day"], validate="one_to_one"
        )
    )
    res["morphology"] = evaluate(meta, feats, ScoreConfig(pca_dim=0, seed=seed), seed, k)
    seconds["morphology"] = time.perf_counter() - lap
    accel = "gpu" if device == "cuda" else "cpu"
    cnn = "spheroid_cnn_small" if quick else "resnet18"
    base = SSLConfig(
        backbone=cnn,
        img_size=32 if quick else 64,
        epochs=epochs,
        batch_size=32 if quick else batch_size,
        seed=seed,
        accelerator=accel,
        precision="32-true",
    )
    score_cfg = ScoreConfig(seed=seed)
    for name in REPRESENTATIONS[1:6]:
        lap = time.perf_counter()
        if name == "random_init":
            torch.manual_seed(seed)
            cfg = base
            model = build_method("simclr", backbone=cnn, in_chans=1, img_size=cfg.img_size)
        else:
            cfg = dataclasses.replace(
                base, method=name, backbone="vit_tiny_patch16_224" if name == "mae" else cnn
            )
            model, cfg = load_model(train_ssl(meta, work / name, cfg, progress=False))
        emb = extract(model, meta, cfg, device=device)
        res[name] = evaluate(meta, emb, score_cfg, seed, k)
        seconds[name] = time.perf_counter() - lap
    lap = time.perf_counter()
    module, acc = train_supervised(
        meta,
        backbone=cnn,
        img_size=base.img_size,
        epochs=max(epochs // 2, 1),
        seed=seed,
        accelerator=accel,
    )
    emb = extract(module, meta, base, device=device)
    res["supervised"] = evaluate(meta, emb, score_cfg, seed, k)
    res["supervised"]["baseline_accuracy"] = acc["accuracy"]
    seconds["supervised"] = time.perf_counter() - lap
    truth = pd.read_csv(work / "data" / "drugs.csv")
    return {
        "preset": preset,
        "seed": seed,
        "results": res,
        "mechanisms": dict(zip(truth["drug"], truth["mechanism"])),
        "seconds": {k_: round(v, 1) for k_, v in seconds.items()},
        "total_seconds": round(time.perf_counter() - t0, 1),
    }


def _mean_sd(values: list[float]) -> list[float]:
    a = np.asarray(values, dtype=float)
    return [round(float(a.mean()), 3), round(float(a.std(ddof=1)) if a.size > 1 else 0.0, 3)]


def summarise(cases: list[dict]) -> dict:
    """Mean and sd over seeds of every number, per preset and representation."""
    out: dict = {}
    for preset in sorted({c["preset"] for c in cases}):
        cs = [c for c in cases if c["preset"] == preset]
        mech = cs[0]["mechanisms"]
        table = {}
        for rep in REPRESENTATIONS:
            rs = [c["results"][rep] for c in cs]
            row = {
                "spearman": _mean_sd([r["spearman"] for r in rs]),
                "topk_recall": _mean_sd([r["topk_recall"] for r in rs]),
                "probe": {s: _mean_sd([r["probe"][s] for r in rs]) for s in rs[0]["probe"]},
                "detected": {
                    f"{d} ({mech.get(d, '?')})": _mean_sd([r["detected"][d] for r in rs])
                    for d in rs[0]["detected"]
                },
            }
            row["missed"] = [d for d, v in row["detected"].items() if v[0] < 0.5]
            if rep == "supervised":
                row["baseline_accuracy"] = _mean_sd([r["baseline_accuracy"] for r in rs])
            table[rep] = row
        out[preset] = table
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--quick", action="store_true", help="1 small plate, 1 seed, 2 epochs")
    ap.add_argument("--presets", nargs="+", default=["easy", "hard"])
    ap.add_argument("--seeds", type=int, nargs="+", default=None)
    ap.add_argument("--epochs", type=int, default=None, help="SSL epochs (supervised: half)")
    ap.add_argument("--batch-size", type=int, default=64, help="SSL batch")
    ap.add_argument("--jobs", type=int, default=1, help="(preset, seed) cases in parallel")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads per case")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    epochs = args.epochs or (2 if args.quick else 25)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as root:
        jobs = [
            (p, s, args.device, epochs, args.quick, root, args.threads, args.batch_size)
            for p in args.presets
            for s in seeds
        ]
        cases = []

        def done(c: dict) -> None:
            cases.append(c)
            print(json.dumps(c), flush=True)  # one line per finished case

        if args.jobs > 1:
            with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as ex:
                for fut in as_completed([ex.submit(run_case, *j) for j in jobs]):
                    done(fut.result())
        else:
            for j in jobs:
                done(run_case(*j))
    cases.sort(key=lambda c: (c["preset"], c["seed"]))
    device = args.device
    if device == "cuda":
        import torch

        device = torch.cuda.get_device_name(0)
    result = {
        "benchmark": "ranking",
        "package": "spheroid-rank",
        "device": device,
        "settings": {
            "seeds": seeds,
            "ssl_epochs": epochs,
            "quick": args.quick,
            "cpu_cores": os.cpu_count(),
            "jobs": args.jobs,
        },
        "seconds": round(time.perf_counter() - t0, 1),
        "results": summarise(cases),
        "cases": cases,
    }
    if args.out:
        from spheroid_rank.data.io import write_json

        write_json(args.out, result, indent=1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
