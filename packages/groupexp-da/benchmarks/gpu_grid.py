"""Ablation grid A0-A6 on the synthetic benchmark (GPU), several runs sharing one GPU.

Stage 1 (every seed and row at once): A0 plain source-only, A1 source + ROS, G source + ROS +
group head. Self-training (every seed and row at once, each from its stage 1): A2 ST3D, A3 ST3D + source mixing,
A4 GroupEXP (explorative update, union labels, swap), A5 GroupEXP with the groups frozen after
stage 1 (no group losses in self-training; union labels only, as the authors' code),
A6 GroupEXP with baseline-only pseudo labels. Prints one JSON object (AP per row and seed,
pseudo-label precision/recall per round, mean ± sd over seeds in ``summary``) and writes it
to ``--out``/grid.json; recall heatmaps of A2 and A4 for ``--recall-seeds``.

    python benchmarks/gpu_grid.py --out OUT --frames-source 300 --frames-target 250 \\
        --epochs 8 --rounds 2 --st3d-epochs 2 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

STAGE1 = {
    "A0": "pointpillars_synth_source_only_cpu",
    "A1": "pointpillars_synth_ros_cpu",
    "G": "pointpillars_synth_groupexp_src_cpu",
}
SELF = {  # row: (config, stage-1 row, cfg options)
    "A2": ("pointpillars_synth_st3d_cpu", "A1", []),
    "A3": ("pointpillars_synth_st3d_mix_cpu", "A1", []),
    "A4": ("pointpillars_synth_groupexp_cpu", "G", []),
    "A5": ("pointpillars_synth_groupexp_cpu", "G", ["model.group_cfg.enabled=false"]),
    "A6": ("pointpillars_synth_groupexp_cpu", "G", ["st3d.group_labels=false"]),
}
KEYS = ("Car_BEV_R40_moderate", "Car_3D_R40_moderate")


def _job(a) -> None:
    """One run inside this process (called by the driver through a subprocess)."""
    import torch

    from groupexp_da.engine.config import load_config, parse_cfg_options
    from groupexp_da.engine.demo import _train, set_workers
    from groupexp_da.engine.st3d import adapt

    torch.set_num_threads(a.threads)
    data, work = Path(a.data), Path(a.work)
    if a.kind == "stage1":
        ckpt, m = _train(a.config, data, work, a.epochs, a.workers)
        res = {"checkpoint": ckpt, "metrics": m}
    else:
        cfg = load_config(
            a.config,
            source=str(data / "source"),
            target=str(data / "target"),
            work_dir=str(work),
            cfg_options=parse_cfg_options(a.cfg_options),
        )
        set_workers(cfg, a.workers)
        cfg.st3d.rounds, cfg.st3d.epochs_per_round = a.rounds, a.st3d_epochs
        res = {"history": adapt(cfg, a.ckpt, work, device=a.device)}
    (work / "job.json").write_text(json.dumps(res))


def _warm_numba() -> None:
    """Compile (and cache) the numba IoU/AP kernels once before the runs start in parallel."""
    import numpy as np

    from groupexp_da.eval.iou import bev_iou, bev_of
    from groupexp_da.eval.kitti_ap import kitti_ap

    b = np.array([[10.0, 0, 0, 4, 1.8, 1.6, 0.1]])
    bev_iou(bev_of(b), bev_of(b))
    gt = [
        {
            "boxes": b,
            "names": np.array(["Car"]),
            "height": np.array([50.0]),
            "occluded": np.zeros(1),
            "truncated": np.zeros(1),
        }
    ]
    kitti_ap(gt, [{"boxes": b + 0.01, "scores": np.array([0.9]), "height": None}], "Car", 0.7, True)


def _launch(args: list[str], log: Path, threads: int = 2) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return subprocess.Popen(
        [sys.executable, __file__, "--job", "--out", "-", *args],
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        env=env,
    )


def _wait(procs: dict) -> dict:
    return {k: p.wait() for k, p in procs.items()}


def _short(m: dict) -> dict:
    return {k: round(float(m.get(f"car/{k}", float("nan"))), 2) for k in KEYS}


def _group_weights(out: Path, seed: int, acc: dict) -> dict:
    """Group weights and sizes per epoch from every ``groups.json`` of this seed's runs."""
    for f in sorted(out.glob(f"s{seed}_*/**/groups.json")):
        run = f.relative_to(out).parent.as_posix()
        acc[run] = [
            {
                "epoch": e["epoch"],
                "weights": [g["weight"] for g in e["groups"]],
                "objects": [g["objects"] for g in e["groups"]],
                "target_share": [g["target_share"] for g in e["groups"]],
            }
            for e in json.loads(f.read_text())
        ]
    return acc


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (mechanics only)")
    ap.add_argument("--frames-source", type=int, default=300)
    ap.add_argument("--frames-target", type=int, default=250)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--st3d-epochs", type=int, default=2)
    ap.add_argument("--seeds", default="0")
    ap.add_argument(
        "--rows",
        default=",".join([*STAGE1, *SELF]),
        help="rows to run, e.g. A1,G,A2,A4 (a self-training row needs its stage 1)",
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="torch threads per run")
    ap.add_argument("--recall-seeds", default="0", help="seeds that get recall heatmaps")
    ap.add_argument("--synth-workers", type=int, default=12)
    ap.add_argument(
        "--synth-only",
        action="store_true",
        help="write the seeds' synthetic frames and stop (numpy only)",
    )
    ap.add_argument("--job", action="store_true")
    ap.add_argument("--kind")
    ap.add_argument("--config")
    ap.add_argument("--data")
    ap.add_argument("--work")
    ap.add_argument("--ckpt")
    ap.add_argument("--cfg-options", nargs="*", default=[])
    ap.add_argument("--summarize", action="store_true", help="rebuild grid.json from --out")
    a = ap.parse_args(argv)
    if a.job:
        return _job(a)
    if a.summarize:
        res = summarize(Path(a.out), [int(s) for s in a.seeds.split(",")])
        print(json.dumps(res))
        return None
    if a.quick:
        a.frames_source, a.frames_target, a.epochs, a.rounds, a.st3d_epochs = 12, 10, 1, 1, 1
    from groupexp_da.data.synth import write_domain

    rows = set(a.rows.split(","))
    stage1_rows = {r: c for r, c in STAGE1.items() if r in rows}
    self_rows = {r: v for r, v in SELF.items() if r in rows}
    if not a.synth_only:
        _warm_numba()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result = {
        "benchmark": "gpu_grid",
        "package": "groupexp-da",
        "device": a.device,
        "settings": {
            k: getattr(a, k)
            for k in ("frames_source", "frames_target", "epochs", "rounds", "st3d_epochs")
        },
        "rows": {},
        "labels": {},
        "timings": {},
    }
    seeds = [int(s) for s in a.seeds.split(",")]
    for seed in seeds:
        data = out / f"data_s{seed}"
        for dom, n in (("source", a.frames_source), ("target", a.frames_target)):
            if not (data / dom / "val_infos.pkl").exists():
                write_domain(
                    data / dom, dom, n, seed=seed + (dom == "target"), workers=a.synth_workers
                )
    result["timings"]["synth"] = round(time.perf_counter() - t0, 1)
    if a.synth_only:
        return

    def common(seed: int) -> list[str]:
        return [
            *("--data", str(out / f"data_s{seed}"), "--epochs", str(a.epochs)),
            *("--workers", str(a.workers), "--device", a.device, "--threads", str(a.threads)),
        ]

    # every seed's stage 1 at once, then every seed's self-training at once
    procs = {
        (seed, row): _launch(
            ["--kind", "stage1", "--config", cfg, "--work", str(out / f"s{seed}_{row}")]
            + common(seed),
            out / f"s{seed}_{row}.log",
            a.threads,
        )
        for seed in seeds
        for row, cfg in stage1_rows.items()
    }
    rc = _wait(procs)
    result["timings"]["stage1"] = round(time.perf_counter() - t0, 1)
    stage = {}
    for seed, row in procs:
        f = out / f"s{seed}_{row}" / "job.json"
        if rc[seed, row] == 0 and f.exists():
            stage[seed, row] = json.loads(f.read_text())
            result["rows"].setdefault(row, {})[seed] = _short(stage[seed, row]["metrics"])
    (out / "grid.json").write_text(json.dumps(result, indent=1))  # partial, if cut short
    procs = {}
    for seed in seeds:
        for row, (cfg, src, opts) in self_rows.items():
            if (seed, src) not in stage:
                continue
            args = [
                *("--kind", "adapt", "--config", cfg, "--work", str(out / f"s{seed}_{row}")),
                *("--ckpt", stage[seed, src]["checkpoint"], *common(seed)),
                *("--rounds", str(a.rounds), "--st3d-epochs", str(a.st3d_epochs)),
            ]
            if opts:
                args += ["--cfg-options", *opts]
            procs[seed, row] = _launch(args, out / f"s{seed}_{row}.log", a.threads)
    rc = _wait(procs)
    result["timings"]["self_training"] = round(time.perf_counter() - t0, 1)
    _collect_self(out, list(procs), result)
    for seed in seeds:
        result["groups"] = _group_weights(out, seed, result.get("groups", {}))
    result["summary"] = _summary(result)
    (out / "grid.json").write_text(json.dumps(result, indent=1))
    recall_seeds = [int(s) for s in a.recall_seeds.split(",") if s != ""]
    for seed, row in [(s, r) for s in recall_seeds for r in ("A2", "A4")]:
        _recall(out, seed, row, a.device, result)
    result["timings"]["total_s"] = round(time.perf_counter() - t0, 1)
    (out / "grid.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


def _collect_self(out: Path, runs: list[tuple[int, str]], result: dict) -> None:
    """AP and pseudo-label quality per round of each self-training run, from ``job.json`` or,
    for a run cut short, from the rounds its ``history.json`` holds."""
    for seed, row in runs:
        work = out / f"s{seed}_{row}"
        if (work / "job.json").exists():
            hist = json.loads((work / "job.json").read_text())["history"]
        elif (work / "history.json").exists():
            hist = json.loads((work / "history.json").read_text())
        else:
            hist = []
        done = [h for h in hist if h["round"] >= 0]
        if not done:
            result["rows"].setdefault(row, {})[seed] = "no finished round"
            continue
        result["rows"].setdefault(row, {})[seed] = _short(done[-1]["metrics"])
        if not (work / "job.json").exists():
            result.setdefault("partial", []).append(f"s{seed}_{row}: {len(done)} rounds")
        result["labels"].setdefault(row, {})[seed] = [
            {
                "round": h["round"],
                "AP": _short(h["metrics"]),
                "positives": h["labels"]["positives"],
                "ignored": h["labels"]["ignored"],
                "by_group": h["labels"].get("positives_by_group"),
                "q07": h["labels"].get("quality_bev_iou_0.7"),
                "q05": h["labels"].get("quality_bev_iou_0.5"),
            }
            for h in done
        ]


def summarize(out: Path, seeds: list[int]) -> dict:
    """Rebuild the grid's result from the run folders under ``out`` (e.g. a cut-off run)."""
    result = {"benchmark": "gpu_grid", "package": "groupexp-da", "rows": {}, "labels": {}}
    for seed in seeds:
        for row in STAGE1:
            f = out / f"s{seed}_{row}" / "job.json"
            if f.exists():
                m = json.loads(f.read_text())["metrics"]
                result["rows"].setdefault(row, {})[seed] = _short(m)
    _collect_self(
        out, [(s, r) for s in seeds for r in SELF if (out / f"s{s}_{r}").exists()], result
    )
    for seed in seeds:
        result["groups"] = _group_weights(out, seed, result.get("groups", {}))
    result["summary"] = _summary(result)
    return result


def _recall(out: Path, seed: int, row: str, device: str, result: dict) -> None:
    """Mechanism M1: recall by kind of car for the detections and the last pseudo labels."""
    f = out / f"s{seed}_{row}" / "job.json"
    if not f.exists():
        return
    from groupexp_da.eval.recall import write_recall
    from groupexp_da.eval.recall_run import run_recall

    data = out / f"data_s{seed}"
    last = [h for h in json.loads(f.read_text())["history"] if h["round"] >= 0][-1]
    pl = Path(last["checkpoint"]).parent / "pseudo_labels.pkl"
    det = run_recall(
        data / "target" / "val_infos.pkl",
        out / f"recall_s{seed}_{row}",
        checkpoint=last["checkpoint"],
        config=SELF[row][0],
        device=device,
    )
    lab = run_recall(
        data / "target" / "train_infos.pkl", out / f"recall_s{seed}_{row}", pseudo=str(pl)
    )
    tables = {
        "detections (target val)": det["tables"]["detections"],
        "last pseudo labels (target train)": lab["tables"]["pseudo labels"],
    }
    write_recall(out / f"recall_s{seed}_{row}", tables)
    result.setdefault("recall", {})[f"{row}_s{seed}"] = {
        k: {
            "recall": v["recall"],
            "worst_bin_recall": v["worst_bin_recall"],
            "cv": v["cv"],
            "recall_grid": v["recall_grid"],
            "count": v["count"],
        }
        for k, v in tables.items()
    }


def _mean_sd(values: list[float]) -> list[float]:
    import statistics

    if not values:
        return []
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return [round(statistics.fmean(values), 2), round(sd, 2), len(values)]


def _summary(result: dict) -> dict:
    """Mean, sd (n − 1) and n over seeds: AP per row, label precision/recall per round."""
    out = {"AP": {}, "labels_q07": {}}
    for row, per_seed in result["rows"].items():
        ok = [v for v in per_seed.values() if isinstance(v, dict)]
        out["AP"][row] = {k: _mean_sd([v[k] for v in ok if v[k] == v[k]]) for k in KEYS}
    for row, per_seed in result["labels"].items():
        rounds: dict[int, dict[str, list[float]]] = {}
        for hist in per_seed.values():
            for h in hist:
                q = h["q07"] or {}
                acc = rounds.setdefault(h["round"], {"precision": [], "recall": [], "pos": []})
                for k in ("precision", "recall"):
                    if q.get(k) is not None:
                        acc[k].append(float(q[k]))
                acc["pos"].append(float(h["positives"]))
        out["labels_q07"][row] = {
            r: {k: _mean_sd(v) for k, v in d.items()} for r, d in rounds.items()
        }
    return out


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
