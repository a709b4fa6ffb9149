"""``instance-nerf experiment noisy``: does the pipeline beat the noisy per-view 2D masks it starts from?

Per seed: a procedural room, noisy panoptic masks (``data/noisy.panoptic_noise``), one nerfacto run, then the
rows B0 (the test views' noisy masks), B1 (a field on the raw per-view ids), M1/M2/M3 (matched to 3D masks;
+ regulariser; + guided refinement and stage B) and O (M3 with the true 3D masks). Writes
``results.{json,md}`` with mean ± sd over seeds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from instance_nerf.data.io import (
    atomic_write,
    load_instance_mask,
    read_json,
    save_instance_mask,
    write_json,
)
from instance_nerf.data.noisy import write_noisy_panoptic
from instance_nerf.data.panoptic import read_panoptic
from instance_nerf.data.synth import SynthConfig, generate
from instance_nerf.engine.pipeline import (
    PipelineConfig,
    instance_config,
    run_pipeline,
    train_resumable,
)
from instance_nerf.matching.scene import scene_cameras

ROWS = ("B0", "B1", "M1", "M2", "M3", "O")
PIPELINE_ROWS = ("B0", "M3", "O")
"""Rows every run has: the noisy masks, the full pipeline and its oracle counterpart."""
METRICS = ("miou", "pq", "pq_mv", "consistency")


@dataclass
class ExperimentConfig:
    """Budgets of the experiment (the spec's defaults; the CLI can shrink them for a CPU)."""

    out: Path
    seeds: tuple[int, ...] = (100, 101, 102, 103, 104)
    severity: str = "medium"
    rcnn: Path | None = None
    objects: int = 6
    views: int = 48
    size: int = 64
    nerf_iters: int = 300
    stage_a_iters: int = 1000
    stage_b_iters: int = 800
    rays: int = 1024
    regularizer: float = 1.0
    """lambda_reg of M2, M3, O and B1 (M1 is the lambda = 0 row)."""
    device: str = "cpu"
    rows: tuple[str, ...] = ROWS
    """Rows to compute; B0, M3 and O always (a severity sweep needs only those)."""

    def __post_init__(self):
        unknown = set(self.rows) - set(ROWS)
        if unknown:
            raise ValueError(
                f"unknown experiment rows {sorted(unknown)} (choose from {', '.join(ROWS)})"
            )
        self.rows = tuple(r for r in ROWS if r in set(self.rows) | set(PIPELINE_ROWS))


def _raw_masks(scene: Path, panoptic: Path, out: Path) -> dict:
    """B1's supervision: the noisy segment ids as instance ids (background → 0, void → −1), majority classes."""
    stems = list(scene_cameras(scene, "train"))
    views = read_panoptic(panoptic, stems)
    votes: dict[int, dict[int, int]] = {}
    top = 0
    for stem in stems:
        seg, segs = views[stem]
        ids = np.full(seg.shape, -1, dtype=np.int64)
        for s in segs:
            m = seg == s["id"]
            if s.get("is_background"):
                ids[m] = 0
            else:
                ids[m] = s["id"]
                top = max(top, int(s["id"]))
                votes.setdefault(int(s["id"]), {}).setdefault(int(s["class_id"]), 0)
                votes[int(s["id"])][int(s["class_id"])] += int(m.sum())
        save_instance_mask(out / f"{stem}.png", ids)
    classes = {i: max(v, key=v.get) for i, v in votes.items()}
    write_json(
        out.parent / f"{out.name}.json",
        {
            "num_instances": top + 1,
            "instances": [{"id": 0, "class_id": 0}]
            + [{"id": i, "class_id": c} for i, c in sorted(classes.items())],
        },
    )
    return {"num_instances": top + 1}


def supervision_stats(
    scene: Path,
    masks: Path,
    id_map: dict[int, int] | None = None,
    panoptic_mapping: dict | None = None,
) -> dict:
    """On the training views: SA (labels ≥ 0 whose mapped id is the GT id), coverage, and recovery of dropped objects.

    ``id_map`` maps a mask id to a GT id (identity when None); without one a global majority map from the
    co-occurrence with GT is used (B1). Recovery needs the noise mapping (which GT objects each noisy view lost).
    """
    stems = list(scene_cameras(scene, "train"))
    gts = [load_instance_mask(scene / "instances" / f"{s}.png") for s in stems]
    labs = [load_instance_mask(Path(masks) / f"{s}.png") for s in stems]
    if id_map is None:
        co: dict[int, dict[int, int]] = {}
        for g, lab in zip(gts, labs):
            ok = (lab > 0) & (g >= 0)
            for a, b in zip(lab[ok], g[ok]):
                co.setdefault(int(a), {}).setdefault(int(b), 0)
                co[int(a)][int(b)] += 1
        id_map = {a: max(v, key=v.get) for a, v in co.items()}
    id_map = {0: 0, **id_map}
    right = labelled = total = drop_px = drop_ok = 0
    for stem, g, lab in zip(stems, gts, labs):
        valid = lab >= 0
        mapped = (
            np.vectorize(lambda k: id_map.get(int(k), -2))(lab[valid])
            if valid.any()
            else np.array([])
        )
        right += int((mapped == g[valid]).sum())
        labelled += int(valid.sum())
        total += lab.size
        if panoptic_mapping is not None:
            kept = {int(v) for v in panoptic_mapping.get(stem, {}).values()}
            for k in np.unique(g[g > 0]):
                if int(k) not in kept and (g == k).sum() >= 4:
                    sel = g == k
                    drop_px += int(sel.sum())
                    drop_ok += int(
                        (np.vectorize(lambda x: id_map.get(int(x), -2))(lab[sel]) == k).sum()
                    )
    out = {"sa": right / max(labelled, 1), "coverage": labelled / max(total, 1)}
    if panoptic_mapping is not None:
        out["recovery"] = drop_ok / max(drop_px, 1)
    return out


def _eval_run(config: Path, out: Path, device: str) -> dict:
    from instance_nerf.engine.checkpoint import load_run
    from instance_nerf.eval.evaluate import evaluate_pipeline

    if (out / "metrics.json").is_file():
        return read_json(out / "metrics.json")
    _, pipe, _ = load_run(config, device=device)
    return evaluate_pipeline(pipe, out, save_renders=False)


def run_seed(cfg: ExperimentConfig, seed: int) -> dict:
    """All rows for one seed (resumable: every stage reuses its output)."""
    from instance_nerf.eval.panoptic_eval import evaluate_panoptic

    root = Path(cfg.out) / f"seed_{seed}"
    scene = root / "scene"
    if not (scene / "transforms.json").is_file():
        generate(
            scene,
            SynthConfig(
                seed=seed,
                num_objects=cfg.objects,
                num_views=cfg.views,
                width=cfg.size,
                height=cfg.size,
            ),
        )
    noisy = scene / f"panoptic_{cfg.severity}"
    if not (noisy / "segments.json").is_file():
        write_noisy_panoptic(scene, noisy, seed, cfg.severity)
    rows: dict[str, dict] = {"B0": evaluate_panoptic(scene, noisy, "test")}
    mapping = read_json(noisy / "mapping.json")
    common = dict(
        scene=scene,
        panoptic=noisy,
        nerf_iters=cfg.nerf_iters,
        stage_a_iters=cfg.stage_a_iters,
        stage_b_iters=cfg.stage_b_iters,
        rays=cfg.rays,
        regularizer=cfg.regularizer,
        device=cfg.device,
    )
    main = root / ("rcnn" if cfg.rcnn else "oracle")
    m3 = run_pipeline(PipelineConfig(out=main, rcnn=cfg.rcnn, oracle_3d=cfg.rcnn is None, **common))
    nerf_ckpt = max(
        (main / "runs" / "nerfacto" / "nerfacto" / "run" / "nerfstudio_models").glob("step-*.ckpt")
    )
    rows["M3"] = (
        read_json(main / "eval" / "metrics.json")
        if (main / "eval" / "metrics.json").is_file()
        else m3
    )
    if "M2" in cfg.rows:
        rows["M2"] = _eval_run(
            main / "runs" / "stage_a" / "instance-nerf" / "run" / "config.yml",
            main / "eval_stage_a",
            cfg.device,
        )
    if "M1" in cfg.rows:
        rows["M1"] = _m1(cfg, scene, main, nerf_ckpt)
    raw = root / "instances_raw"
    if "B1" in cfg.rows:
        rows["B1"] = _b1(cfg, scene, noisy, root, main, nerf_ckpt)
    if cfg.rcnn is not None:
        orc = root / "oracle"
        rows["O"] = run_pipeline(PipelineConfig(out=orc, oracle_3d=True, **common))
        rows["O"] = read_json(orc / "eval" / "metrics.json")
    else:
        rows["O"] = dict(rows["M3"], note="3D masks are the oracle's, so O = M3")
    identity = {k: k for k in range(cfg.objects + 1)}  # oracle masks3d: id k is GT object k
    mech = {
        "M": supervision_stats(
            scene, main / "instances_matched", None if cfg.rcnn else identity, mapping
        ),
        "M3_refined": supervision_stats(
            scene, main / "instances_refined", None if cfg.rcnn else identity, mapping
        ),
    }
    if "B1" in cfg.rows:
        mech["B1"] = supervision_stats(scene, raw)
    result = {
        "seed": seed,
        "severity": cfg.severity,
        "rows": {r: {k: rows[r][k] for k in METRICS if k in rows[r]} for r in ROWS if r in rows},
        "mechanism": mech,
    }
    write_json(root / "result.json", result)
    return result


def _m1(cfg: ExperimentConfig, scene: Path, main: Path, nerf_ckpt: Path) -> dict:
    """M1: a field on the matched masks without the regulariser."""
    m1_cfg = instance_config(
        scene,
        main / "runs",
        "m1",
        main / "instances_matched",
        main / "instances_matched.json",
        cfg.stage_a_iters,
        cfg.rays,
        cfg.device,
        0.0,
        nerfacto_ckpt=nerf_ckpt,
    )
    return _eval_run(train_resumable(m1_cfg), main / "eval_m1", cfg.device)


def _b1(
    cfg: ExperimentConfig, scene: Path, noisy: Path, root: Path, main: Path, nerf_ckpt: Path
) -> dict:
    """B1: a field on the raw per-view ids (each view's ids are its own), regulariser on."""
    raw = root / "instances_raw"
    if not (root / "instances_raw.json").is_file():
        _raw_masks(scene, noisy, raw)
    b1_cfg = instance_config(
        scene,
        main / "runs",
        "b1",
        raw,
        root / "instances_raw.json",
        cfg.stage_a_iters,
        cfg.rays,
        cfg.device,
        cfg.regularizer,
        nerfacto_ckpt=nerf_ckpt,
    )
    return _eval_run(train_resumable(b1_cfg), main / "eval_b1", cfg.device)


def summarize(results: list[dict]) -> dict:
    """Mean and sd over seeds per row and metric, and the spec's direction checks (per seed)."""
    table = {}
    for r in ROWS:
        table[r] = {}
        for k in METRICS:
            vals = [res["rows"][r][k] for res in results if k in res["rows"].get(r, {})]
            if vals:
                table[r][k] = {
                    "mean": float(np.mean(vals)),
                    "sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                }

    def gain(k: str) -> list[float]:
        return [res["rows"]["M3"][k] - res["rows"]["B0"][k] for res in results]

    cons = [res["rows"]["M3"]["consistency"] for res in results]
    checks = {
        "pq_m3_minus_b0": gain("pq"),
        "miou_m3_minus_b0": gain("miou"),
        "pq_mv_m3_minus_b0": gain("pq_mv"),
        "consistency_m3": cons,
        "seeds_pq_gain_ge_0.05": sum(d >= 0.05 for d in gain("pq")),
        "seeds_miou_gain_ge_0.03": sum(d >= 0.03 for d in gain("miou")),
        "seeds_pq_mv_gain_ge_0.3": sum(d >= 0.3 for d in gain("pq_mv")),
        "seeds_consistency_ge_0.8": sum(c >= 0.8 for c in cons),
    }
    return {"table": table, "checks": checks}


def markdown(summary: dict, cfg: ExperimentConfig, n: int) -> str:
    lines = [
        f"Procedural rooms, {n} seed(s), severity {cfg.severity}, {cfg.objects} objects, {cfg.views} views of "
        f"{cfg.size}², nerfacto {cfg.nerf_iters} it, stage A {cfg.stage_a_iters} it, stage B {cfg.stage_b_iters} it, "
        f"{cfg.rays} rays, lambda_reg {cfg.regularizer}, "
        f"3D masks: {'RCNN ' + str(cfg.rcnn) if cfg.rcnn else 'oracle'}.",
        "",
        "| row | mIoU | PQ | PQ_mv | consistency |",
        "|---|---|---|---|---|",
    ]
    for r in cfg.rows:
        cells = []
        for k in METRICS:
            v = summary["table"][r].get(k)
            cells.append(f"{v['mean']:.3f} ± {v['sd']:.3f}" if v else "–")
        lines.append(f"| {r} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_experiment(cfg: ExperimentConfig) -> dict:
    """Every seed, then ``results.json`` and ``results.md`` in ``cfg.out``."""
    t = time.time()
    results = [run_seed(cfg, s) for s in cfg.seeds]
    summary = summarize(results)
    summary.update(
        {
            "seeds": list(cfg.seeds),
            "per_seed": results,
            "seconds": round(time.time() - t, 1),
            "config": {k: str(v) for k, v in vars(cfg).items()},
        }
    )
    write_json(Path(cfg.out) / "results.json", summary)
    with atomic_write(Path(cfg.out) / "results.md") as f:
        f.write(markdown(summary, cfg, len(results)))
    return summary
