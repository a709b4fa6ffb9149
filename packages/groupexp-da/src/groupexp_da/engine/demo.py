"""End-to-end demo: synth both domains -> source-only PointPillars -> ST3D -> AP table + plots."""

from __future__ import annotations

import json
import time
from pathlib import Path

import mmengine
import numpy as np

from groupexp_da.data.io import atomic_write, write_json

KEYS = ("Car_BEV_R40_moderate", "Car_3D_R40_moderate", "Car_BEV_R40_easy", "Car_3D_R40_easy")


def set_epochs(cfg, epochs: int) -> None:
    """Set the epoch budget and stretch the cosine schedule to it."""
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = epochs
    for s in cfg.param_scheduler:
        if s["type"] == "CosineAnnealingLR":
            s["T_max"] = epochs
            s["end"] = epochs


def set_workers(cfg, workers: int) -> None:
    """Use ``workers`` data-loading processes in every dataloader of ``cfg``."""
    for key in ("train_dataloader", "val_dataloader", "test_dataloader"):
        if key in cfg:
            cfg[key].num_workers = workers
            cfg[key].persistent_workers = workers > 0


def _train(config: str, data: Path, work: Path, epochs: int, workers: int = 0) -> tuple[str, dict]:
    from groupexp_da.engine.config import build_runner, load_config
    from groupexp_da.engine.st3d import evaluate

    cfg = load_config(
        config, source=str(data / "source"), target=str(data / "target"), work_dir=str(work)
    )
    set_epochs(cfg, epochs)
    set_workers(cfg, workers)
    cfg.train_cfg.val_interval = 10**6  # evaluated once below
    ckpt = work / f"epoch_{epochs}.pth"
    if not ckpt.exists():
        cfg.resume = (work / "last_checkpoint").exists()
        build_runner(cfg).train()
    return str(ckpt), evaluate(cfg, str(ckpt), work / "test")


def _short(m: dict) -> dict:
    return {k: round(m.get(f"car/{k}", m.get(k, float("nan"))), 2) for k in KEYS}


def results_table(rows: dict[str, dict]) -> str:
    head = "| method | " + " | ".join(k.replace("Car_", "").replace("_", " ") for k in KEYS)
    lines = [head + " |", "|---" * (len(KEYS) + 1) + "|"]
    for name, m in rows.items():
        s = _short(m)
        lines.append(f"| {name} | " + " | ".join(f"{s[k]:.2f}" for k in KEYS) + " |")
    return "\n".join(lines)


def _plots(out: Path, data: Path, ckpts: dict[str, str], pseudo: Path | None) -> list[str]:
    from groupexp_da.data.io import read_points
    from groupexp_da.engine.config import load_config
    from groupexp_da.engine.infer import build_dataset, build_model, predict_dataset
    from groupexp_da.eval.gt import gt_frame
    from groupexp_da.eval.plots import bev_plot

    cfg = load_config("pointpillars_synth_source_only_cpu", target=str(data / "target"))
    val = mmengine.load(data / "target" / "val_infos.pkl")
    info = val["data_list"][0]
    pts = read_points(
        str(data / "target" / "points" / info["lidar_points"]["lidar_path"]),
        info["lidar_points"]["num_pts_feats"],
    )
    gt = gt_frame(info, val["metainfo"], "lidar")["boxes"]
    ds = dict(cfg.test_dataloader.dataset)
    ds["indices"] = [0]
    written = []
    for name, ckpt in ckpts.items():
        p = predict_dataset(build_model(cfg, ckpt), build_dataset(ds))[0]
        keep = p["scores"] >= 0.3
        f = bev_plot(
            out / f"bev_{name}.png",
            pts,
            gt,
            p["boxes"][keep],
            p["scores"][keep],
            xlim=(0, 40),
            ylim=(-20, 20),
            title=f"target val frame 0: {name}",
        )
        written.append(str(f))
    if pseudo is not None and pseudo.exists():
        pl = mmengine.load(pseudo)["data_list"][0]
        tr = mmengine.load(data / "target" / "train_infos.pkl")["data_list"][0]
        pts = read_points(
            str(data / "target" / "points" / tr["lidar_points"]["lidar_path"]),
            tr["lidar_points"]["num_pts_feats"],
        )
        boxes = np.array([i["bbox_3d"] for i in pl["instances"]]).reshape(-1, 7)
        labels = np.array([i["bbox_label_3d"] for i in pl["instances"]])
        gt_tr = np.array([i["bbox_3d"] for i in tr["instances"]]).reshape(-1, 7)
        f = bev_plot(
            out / "bev_pseudo_labels.png",
            pts,
            gt_tr,
            pseudo=boxes,
            pseudo_labels=labels,
            xlim=(0, 40),
            ylim=(-20, 20),
            title=f"target train frame 0: {pseudo.parent.parent.name} round-0 pseudo labels",
        )
        written.append(str(f))
    return written


def _self_train(
    config: str, data: Path, work: Path, src_ckpt: str, rounds: int, epochs: int, workers: int
) -> list[dict]:
    from groupexp_da.engine.config import load_config
    from groupexp_da.engine.st3d import adapt

    cfg = load_config(
        config, source=str(data / "source"), target=str(data / "target"), work_dir=str(work)
    )
    set_workers(cfg, workers)
    cfg.st3d.rounds = rounds
    cfg.st3d.epochs_per_round = epochs
    return adapt(cfg, src_ckpt, work)


def _recall(out: Path, data: Path, config: str, ckpt: str, pseudo: Path | None) -> dict:
    from groupexp_da.eval.recall_run import run_recall

    det = run_recall(data / "target" / "val_infos.pkl", out, checkpoint=ckpt, config=config)
    res = {"detections (target val)": det["tables"]["detections"]}
    if pseudo is not None and pseudo.exists():
        pl = run_recall(data / "target" / "train_infos.pkl", out / "pseudo", pseudo=str(pseudo))
        res["pseudo labels (target train)"] = pl["tables"]["pseudo labels"]
    from groupexp_da.eval.recall import write_recall

    write_recall(out, res)
    return res


METHODS = ("st3d", "groupexp", "both")


def run_demo(
    out: str | Path,
    frames_source: int = 200,
    frames_target: int = 100,
    epochs: int = 6,
    st3d_epochs: int = 2,
    rounds: int = 1,
    seed: int = 0,
    oracle: bool = False,
    workers: int = 0,
    plain_source: bool = False,
    method: str = "st3d",
    groupexp_rounds: int | None = None,
    groupexp_epochs: int | None = None,
) -> dict:
    """Run the whole pipeline under ``out``; re-running resumes finished steps.

    Rows: ``source + ROS`` (ST3D's stage 1, the start of self-training), ``ST3D`` and/or
    ``GroupEXP`` (``method``) and, on request, ``source only`` (plain source training, the
    paper's baseline) and ``oracle``. GroupEXP self-trains from the same ROS checkpoint: its
    groups are initialised by k-means when round 0 starts training, so its pseudo labels use
    the group branches from round 1 on (``groupexp_rounds`` defaults to ``max(rounds, 2)``, of
    ``groupexp_epochs`` epochs each, default ``st3d_epochs``; a GroupEXP epoch trains on source +
    target batches, twice the frames of an ST3D epoch).
    """
    from groupexp_da.data.synth import write_domain

    if method not in METHODS:
        raise ValueError(f"demo --method must be one of {METHODS}, got {method!r}")
    out = Path(out)
    data = out / "data"
    t0 = time.perf_counter()
    timings = {}
    for dom, n in (("source", frames_source), ("target", frames_target)):
        if not (data / dom / "val_infos.pkl").exists():
            write_domain(data / dom, dom, n, seed=seed + (dom == "target"), progress=True)
    timings["synth_s"] = round(time.perf_counter() - t0, 1)
    rows = {}
    if plain_source:  # the paper's "source only": no ROS
        t = time.perf_counter()
        _, rows["source only"] = _train(
            "pointpillars_synth_source_only_cpu", data, out / "source_only", epochs, workers
        )
        timings["source_only_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()  # ST3D stage 1: source training with random object scaling
    src_ckpt, rows["source + ROS (ST3D stage 1)"] = _train(
        "pointpillars_synth_ros_cpu", data, out / "source_ros", epochs, workers
    )
    timings["source_ros_s"] = round(time.perf_counter() - t, 1)
    ckpts = {"source_ros": src_ckpt}
    labels, recall, pseudo_first = {}, {}, None
    runs = []
    if method in ("st3d", "both"):
        runs.append(("st3d", "pointpillars_synth_st3d_cpu", rounds, st3d_epochs, "ST3D"))
    if method in ("groupexp", "both"):
        runs.append(
            (
                "groupexp",
                "pointpillars_synth_groupexp_cpu",
                groupexp_rounds or max(rounds, 2),
                groupexp_epochs or st3d_epochs,
                "GroupEXP",
            )
        )
    for key, config, n_rounds, n_epochs, name in runs:
        t = time.perf_counter()
        hist = _self_train(config, data, out / key, src_ckpt, n_rounds, n_epochs, workers)
        timings[f"{key}_s"] = round(time.perf_counter() - t, 1)
        last = [h for h in hist if h["round"] >= 0][-1]
        rows[f"{name} ({n_rounds} round{'s' * (n_rounds > 1)})"] = last["metrics"]
        ckpts[key] = last["checkpoint"]
        labels[key] = [h.get("labels") for h in hist if h["round"] >= 0]
        pl = out / key / f"round_{n_rounds - 1}" / "pseudo_labels.pkl"
        pseudo_first = pseudo_first or out / key / "round_0" / "pseudo_labels.pkl"
        t = time.perf_counter()
        recall[key] = _recall(out / f"recall_{key}", data, config, last["checkpoint"], pl)
        timings[f"recall_{key}_s"] = round(time.perf_counter() - t, 1)
        groups_json = out / key / f"round_{n_rounds - 1}" / "train" / "groups.json"
        if groups_json.exists():
            labels[f"{key}_groups"] = json.loads(groups_json.read_text())[-1]
    if oracle:
        t = time.perf_counter()
        orc_ckpt, m_orc = _train(
            "pointpillars_synth_oracle_cpu", data, out / "oracle", epochs, workers
        )
        timings["oracle_s"] = round(time.perf_counter() - t, 1)
        rows["oracle"] = m_orc
    t = time.perf_counter()
    plots = _plots(out, data, ckpts, pseudo_first)
    timings["plots_s"] = round(time.perf_counter() - t, 1)
    timings["total_s"] = round(time.perf_counter() - t0, 1)
    table = results_table(rows)
    res = {
        "table": {k: _short(v) for k, v in rows.items()},
        "timings": timings,
        "plots": plots,
        "pseudo_labels": labels,
        "recall": {
            k: {
                n: {"recall": t["recall"], "worst_bin_recall": t["worst_bin_recall"]}
                for n, t in v.items()
            }
            for k, v in recall.items()
        },
    }
    write_json(out / "results.json", res, indent=1)
    with atomic_write(out / "results.md") as f:
        f.write(table + "\n")
    print(table)
    for key, per_round in labels.items():
        if key.endswith("_groups"):
            print(f"{key}: " + json.dumps(per_round))
            continue
        for r, st in enumerate(per_round):
            q = (st or {}).get("quality_bev_iou_0.7", {})
            print(
                f"{key} round {r}: positives {st['positives']} (by group "
                f"{st.get('positives_by_group')}), ignored {st['ignored']}, precision "
                f"{q.get('precision')}, recall {q.get('recall')} (BEV IoU 0.7)"
            )
    for key, tabs in res["recall"].items():
        print(f"recall_{key}: " + json.dumps(tabs))
    print(json.dumps(timings))
    return res
