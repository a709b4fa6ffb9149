"""Ablation grid A0-A6 on the synthetic benchmark (GPU), several runs sharing one GPU.

Stage 1: A0 plain source-only, A1 source + ROS, G source + ROS + group head. Self-training,
each from its stage 1: A2 ST3D, A3 ST3D + source mixing, A4 GroupEXP (explorative update,
union labels, swap), A5 GroupEXP with the groups frozen after stage 1 (no group losses in
self-training; union labels only, as the authors' code), A6 GroupEXP with baseline-only pseudo
labels. Every run is a subprocess; at most ``--max-parallel`` run at once, each as soon as its
stage 1 is done, seed by seed (so a run cut short by a time limit has whole seeds), and a run
whose ``job.json`` exists is skipped (resume; ``--pack-stage1`` packs finished stage-1 runs,
weights only, to carry into a later call). ``grid.json`` under ``--out`` is rewritten after
every finished run: AP per row and seed, pseudo-label precision/recall per round, group
statistics, recall heatmaps (A1, A2, A4 for ``--recall-seeds``) and mean ± sd over seeds in
``summary``; the same object is printed at the end.

    python benchmarks/gpu_grid.py --out OUT --frames-source 300 --frames-target 200 \\
        --epochs 6 --rounds 2 --st3d-epochs 1 --seeds 0,1,2
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
    "S0": "second_synth_source_only_gpu",
    "S1": "second_synth_ros_gpu",
    "SG": "second_synth_groupexp_src_gpu",
    "SO": "second_synth_oracle_gpu",
}
SOURCE_BOX_ONLY = 'model.bbox_head.domain_loss_weights={"source": [0, 1, 1]}'
SELF = {  # row: (config, stage-1 row, cfg options)
    "A2": ("pointpillars_synth_st3d_cpu", "A1", []),
    "A3": ("pointpillars_synth_st3d_mix_cpu", "A1", []),
    "A4": ("pointpillars_synth_groupexp_cpu", "G", []),
    "A5": ("pointpillars_synth_groupexp_cpu", "G", ["model.group_cfg.enabled=false"]),
    "A6": ("pointpillars_synth_groupexp_cpu", "G", ["st3d.group_labels=false"]),
    "A4s": ("pointpillars_synth_groupexp_cpu", "G", [SOURCE_BOX_ONLY]),
    "S2": ("second_synth_st3d_gpu", "S1", []),
    "S4": ("second_synth_groupexp_gpu", "SG", []),
}
PP_ROWS = ("A0", "A1", "G", "A2", "A3", "A4", "A5", "A6")  # the default grid
SELF_ORDER = ("A4", "A2", "A6", "A5", "A3", "A4s", "S4", "S2")  # launch priority in a seed
KEYS = ("Car_BEV_R40_moderate", "Car_3D_R40_moderate")


def _job(a) -> None:
    """One run inside this process (called by the driver through a subprocess)."""
    import torch

    from groupexp_da.engine.config import load_config, parse_cfg_options
    from groupexp_da.engine.demo import _train, set_workers
    from groupexp_da.engine.st3d import adapt

    torch.set_num_threads(a.threads)
    if a.gpu_mem_fraction and torch.cuda.is_available():
        # many runs share one GPU: the caching allocator of a SECOND run otherwise keeps ~19 GB
        # reserved for ~2.4 GB allocated (measured), and the other runs go out of memory
        torch.cuda.set_per_process_memory_fraction(a.gpu_mem_fraction)
    data, work = Path(a.data), Path(a.work)
    if a.kind == "recall":
        return _recall_job(a.row, data, work, Path(a.recall_out), a.device)
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
        # the stage-1 run's folder, wherever it was written (e.g. unpacked from a carried tar)
        name = Path(json.loads(Path(a.ckpt_from).read_text())["checkpoint"]).name
        ckpt = str(Path(a.ckpt_from).parent / name)
        res = {"history": adapt(cfg, ckpt, work, device=a.device)}
    (work / "job.json").write_text(json.dumps(res))
    return None


def _recall_job(row: str, data: Path, work: Path, rec: Path, device: str) -> None:
    """Mechanism M1: recall by kind of car of a run's detections on the target val split
    and, for a self-training row, of its last round's pseudo labels (target train split)."""
    from groupexp_da.eval.recall import write_recall
    from groupexp_da.eval.recall_run import run_recall

    job = json.loads((work / "job.json").read_text())
    if row in STAGE1:
        ckpt, config, pl = str(work / Path(job["checkpoint"]).name), STAGE1[row], None
    else:
        last = [h for h in job["history"] if h["round"] >= 0][-1]
        ckpt, config = last["checkpoint"], SELF[row][0]
        pl = Path(last["checkpoint"]).parent / "pseudo_labels.pkl"
    tables = {}
    det = run_recall(
        data / "target" / "val_infos.pkl",
        rec / "_det",
        checkpoint=ckpt,
        config=config,
        device=device,
    )
    tables["detections (target val)"] = det["tables"]["detections"]
    if pl is not None:
        lab = run_recall(data / "target" / "train_infos.pkl", rec / "_pl", pseudo=str(pl))
        tables["last pseudo labels (target train)"] = lab["tables"]["pseudo labels"]
    write_recall(rec, tables)  # recall.json last: the driver's "done" mark


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


def _plan(a, out: Path, seeds: list[int], rows: set[str]) -> list[dict]:
    """Every run of the grid as a job with its dependencies, in priority order: seed by seed,
    stage 1 before self-training (A4 and A2 first), recall heatmaps last."""

    def common(seed: int, row: str = "") -> list[str]:
        epochs = a.second_epochs if row.startswith("S") and a.second_epochs else a.epochs
        return [
            *("--data", str(out / f"data_s{seed}"), "--epochs", str(epochs)),
            *("--workers", str(a.workers), "--device", a.device, "--threads", str(a.threads)),
            *("--gpu-mem-fraction", str(a.gpu_mem_fraction)),
        ]

    recall_seeds = {int(s) for s in a.recall_seeds.split(",") if s != ""}
    jobs = []
    for seed in seeds:
        for row, cfg in STAGE1.items():
            if row in rows:
                work = out / f"s{seed}_{row}"
                args = ["--kind", "stage1", "--config", cfg, "--work", str(work)]
                args += common(seed, row)
                jobs.append(dict(key=f"s{seed}_{row}", args=args, deps=[], done=work / "job.json"))
        for row in SELF_ORDER:
            if row not in rows:
                continue
            cfg, src, opts = SELF[row]
            work = out / f"s{seed}_{row}"
            args = [
                *("--kind", "adapt", "--config", cfg, "--work", str(work)),
                *("--ckpt-from", str(out / f"s{seed}_{src}" / "job.json"), *common(seed, row)),
                *("--rounds", str(a.rounds), "--st3d-epochs", str(a.st3d_epochs)),
            ]
            if opts:
                args += ["--cfg-options", *opts]
            deps = [f"s{seed}_{src}"] if src in rows else []
            jobs.append(dict(key=f"s{seed}_{row}", args=args, deps=deps, done=work / "job.json"))
        for row in ("A1", "A2", "A4"):
            if seed in recall_seeds and row in rows:
                rec = out / f"recall_s{seed}_{row}"
                args = [
                    *("--kind", "recall", "--row", row, "--work", str(out / f"s{seed}_{row}")),
                    *("--recall-out", str(rec), *common(seed)),
                ]
                deps = [f"s{seed}_{row}"]
                jobs.append(
                    dict(
                        key=f"recall_s{seed}_{row}", args=args, deps=deps, done=rec / "recall.json"
                    )
                )
    return jobs


def _schedule(jobs: list[dict], out: Path, max_parallel: int, threads: int, on_finish) -> dict:
    """Run ``jobs`` as subprocesses, at most ``max_parallel`` at once, each as soon as its
    dependencies finished; jobs whose result already exists are skipped (resume). Returns the
    state of each job: ``done``, ``failed`` or ``skipped`` (a dependency failed)."""
    state = {j["key"]: ("done" if j["done"].exists() else "todo") for j in jobs}
    running: dict[str, subprocess.Popen] = {}
    t0 = time.perf_counter()
    while True:
        for key, p in list(running.items()):
            if p.poll() is not None:
                del running[key]
                job = next(j for j in jobs if j["key"] == key)
                state[key] = "done" if p.returncode == 0 and job["done"].exists() else "failed"
                print(f"[{time.perf_counter() - t0:6.0f} s] {key}: {state[key]}", flush=True)
                on_finish()
        for j in jobs:
            if state[j["key"]] != "todo" or len(running) >= max_parallel:
                continue
            deps = [state.get(d, "done") for d in j["deps"]]
            if any(d in ("failed", "skipped") for d in deps):
                state[j["key"]] = "skipped"
            elif all(d == "done" for d in deps):
                state[j["key"]] = "running"
                running[j["key"]] = _launch(j["args"], out / f"{j['key']}.log", threads)
                print(f"[{time.perf_counter() - t0:6.0f} s] {j['key']}: started", flush=True)
        if not running and all(v != "todo" for v in state.values()):
            return state
        time.sleep(1.0)


def pack_stage1(out: Path, seeds: list[int], dest: Path, limit: int = 15 << 20) -> list[str]:
    """Finished PointPillars stage-1 runs (``job.json`` + weights only, no optimizer state)
    packed into tars of at most ``limit`` bytes, to carry into a later call that runs the
    self-training rows. SECOND rows are left out: one SECOND checkpoint is ~21 MB, over what a
    device call returns per file."""
    import tarfile

    from groupexp_da.engine.checkpoint import load_checkpoint, save_checkpoint

    dest.mkdir(parents=True, exist_ok=True)
    tmp = out / "_pack"
    tmp.mkdir(exist_ok=True)
    members = []
    for seed in seeds:
        for row in STAGE1:
            f = out / f"s{seed}_{row}" / "job.json"
            if row.startswith("S") or not f.exists():
                continue
            ckpt = Path(json.loads(f.read_text())["checkpoint"])
            ck = load_checkpoint(ckpt)
            slim = save_checkpoint(tmp / f"s{seed}_{row}.pth", ck["state_dict"], ck.get("meta"))
            members.append((f, f"s{seed}_{row}/job.json"))
            members.append((slim, ckpt.relative_to(out).as_posix()))
    written, size, tar = [], 0, None
    for k in range(0, len(members), 2):
        pair = members[k : k + 2]
        n = sum(m[0].stat().st_size for m in pair) + 4096
        if tar is None or size + n > limit:
            if tar is not None:
                tar.close()
            written.append(str(dest / f"stage1_{len(written)}.tar"))
            tar, size = tarfile.open(written[-1], "w"), 0
        for src, arc in pair:
            tar.add(src, arcname=arc)
        size += n
    if tar is not None:
        tar.close()
    return written


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (mechanics only)")
    ap.add_argument("--frames-source", type=int, default=300)
    ap.add_argument("--frames-target", type=int, default=250)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--second-epochs", type=int, default=0, help="SECOND rows (0: --epochs)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--st3d-epochs", type=int, default=2)
    ap.add_argument("--seeds", default="0")
    ap.add_argument(
        "--rows",
        default=",".join(PP_ROWS),
        help="rows to run, e.g. A1,G,A2,A4 (a self-training row needs its stage 1, run here "
        "or already finished under --out)",
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="torch threads per run")
    ap.add_argument("--max-parallel", type=int, default=6, help="runs at once on the GPU")
    ap.add_argument(
        "--gpu-mem-fraction",
        type=float,
        default=0.0,
        help="cap each run's share of GPU memory (0: no cap), e.g. 0.09 for 10 runs at once",
    )
    ap.add_argument("--recall-seeds", default="0", help="seeds that get recall heatmaps")
    ap.add_argument("--synth-workers", type=int, default=12)
    ap.add_argument(
        "--synth-only",
        action="store_true",
        help="write the seeds' synthetic frames and stop (numpy only)",
    )
    ap.add_argument("--dry-run", action="store_true", help="check every planned run and stop")
    ap.add_argument("--pack-stage1", help="write the finished stage-1 runs as tars here and stop")
    ap.add_argument("--job", action="store_true")
    ap.add_argument("--kind")
    ap.add_argument("--config")
    ap.add_argument("--data")
    ap.add_argument("--work")
    ap.add_argument("--ckpt-from")
    ap.add_argument("--row")
    ap.add_argument("--recall-out")
    ap.add_argument("--cfg-options", nargs="*", default=[])
    ap.add_argument("--summarize", action="store_true", help="rebuild grid.json from --out")
    a = ap.parse_args(argv)
    if a.job:
        return _job(a)
    seeds = [int(s) for s in a.seeds.split(",")]
    if a.summarize:
        print(json.dumps(summarize(Path(a.out), seeds)))
        return None
    if a.pack_stage1:
        print(json.dumps({"packed": pack_stage1(Path(a.out), seeds, Path(a.pack_stage1))}))
        return None
    if a.quick:
        a.frames_source, a.frames_target, a.epochs, a.rounds, a.st3d_epochs = 12, 10, 1, 1, 1
        a.second_epochs = 1
    unknown = set(a.rows.split(",")) - set(STAGE1) - set(SELF)
    if unknown:
        ap.error(f"--rows: unknown rows {sorted(unknown)} (known: {[*STAGE1, *SELF]})")
    from groupexp_da.data.synth import write_domain

    if not (a.synth_only or a.dry_run):
        _warm_numba()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    settings = {
        k: getattr(a, k)
        for k in ("frames_source", "frames_target", "epochs", "rounds", "st3d_epochs")
    }
    for seed in seeds:
        data = out / f"data_s{seed}"
        for dom, n in (("source", a.frames_source), ("target", a.frames_target)):
            if not (data / dom / "val_infos.pkl").exists():
                write_domain(
                    data / dom, dom, n, seed=seed + (dom == "target"), workers=a.synth_workers
                )
    timings = {"synth": round(time.perf_counter() - t0, 1)}
    if a.synth_only:
        return None

    def write_result() -> dict:
        res = summarize(out, seeds)
        res.update(device=a.device, settings=settings, timings=timings)
        write_json(out / "grid.json", res, indent=1)
        return res

    from groupexp_da.data.io import write_json

    jobs = _plan(a, out, seeds, set(a.rows.split(",")))
    if a.dry_run:
        print(json.dumps({"dry_run": [_check_job(j) for j in jobs]}))
        return None
    state = _schedule(jobs, out, a.max_parallel, a.threads, write_result)
    timings["total_s"] = round(time.perf_counter() - t0, 1)
    result = write_result()
    result["jobs"] = state
    print(json.dumps(result))
    return None


def _check_job(job: dict) -> dict:
    """Load a planned run's config as the run will (data roots, options), build its training
    set (for self-training: the round's source + target set, the target infos standing in
    for pseudo labels), its test set and one sample of each; no model, no training."""
    from mmdet3d.registry import DATASETS
    from mmdet3d.utils import register_all_modules

    import groupexp_da.register  # noqa: F401
    from groupexp_da.engine.config import load_config, parse_cfg_options
    from groupexp_da.engine.st3d import train_dataset

    register_all_modules(init_default_scope=True)
    kv = dict(zip(job["args"][::2], job["args"][1::2]))
    if kv["--kind"] == "recall":
        return {"key": job["key"], "kind": "recall"}
    opts = job["args"][job["args"].index("--cfg-options") + 1 :] if "--cfg-options" in kv else []
    data = Path(kv["--data"])
    cfg = load_config(
        kv["--config"],
        source=str(data / "source"),
        target=str(data / "target"),
        cfg_options=parse_cfg_options(opts),
    )
    train = cfg.train_dataloader.dataset
    if kv["--kind"] == "adapt":
        labels = Path(cfg.st3d_target_dataset["data_root"]) / "train_infos.pkl"
        train, _ = train_dataset(cfg, labels, 0)
    sizes = []
    for ds_cfg in (train, cfg.test_dataloader.dataset):
        ds = DATASETS.build(ds_cfg)
        item = ds[len(ds) - 1]
        sizes.append([len(ds), int(item["inputs"]["points"].shape[0])])
    head = cfg.model.bbox_head
    return {
        "key": job["key"],
        "config": kv["--config"],
        "epochs": int(kv["--epochs"]),
        "deps": job["deps"],
        "model": f"{cfg.model.type}/{cfg.model.middle_encoder.type}/{head.type}",
        "domain_loss_weights": head.get("domain_loss_weights"),
        "train_test_len_points": sizes,
    }


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
    for f in sorted(out.glob("recall_s*/recall.json")):
        tables = json.loads(f.read_text())
        result.setdefault("recall", {})[f.parent.name.removeprefix("recall_")] = {
            k: {c: v[c] for c in ("recall", "worst_bin_recall", "cv", "recall_grid", "count")}
            for k, v in tables.items()
        }
    result["summary"] = _summary(result)
    return result


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
