"""The Instance-NeRF pipeline on one scene, stage by stage; each stage is skipped when its output exists.

nerfacto → grid → 3D masks (NeRF-RCNN or oracle) → 2D panoptic masks → projection → matching → instance
field (stage A) → refinement → instance field (stage B) → evaluation. ``RUN/stages.json`` records each
stage's inputs, outputs and seconds.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from instance_nerf.data.dataparser import InstanceDataParserConfig
from instance_nerf.data.io import InstanceNerfError, read_json, save_instance_mask, write_json
from instance_nerf.engine.checkpoint import latest_checkpoint, load_run
from instance_nerf.engine.config import instance_cpu_config, nerfacto_cpu_config
from instance_nerf.engine.grid import pipeline_grid, save_grid
from instance_nerf.engine.infer import render_split
from instance_nerf.matching.scene import (
    load_masks3d,
    match_scene,
    occupancy_from_grid,
    oracle_masks3d,
    project_scene,
    save_masks3d,
)
from instance_nerf.refine.refiners import GuidedRefiner, composite


def _seed_all(seed: int) -> None:
    """Seed the global RNGs nerfstudio's samplers draw from (Python, numpy, torch), as ns-train does."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002  (nerfstudio draws from the global numpy RNG)
    torch.manual_seed(seed)


@contextmanager
def deterministic_torch() -> Iterator[None]:
    """torch's deterministic kernels inside the block (warn-only where an op has none), restored after.

    On a CPU with more than one thread, torch (2.13) accumulates ``index_put_(..., accumulate=True)`` (the
    backward of the hash grids' table lookups) in thread-dependent order. Adam with eps 1e-15 turns those
    last-bit differences into different weights, so seeded runs diverged between processes. The
    deterministic kernel sorts the indices instead (measured on the 2-core CPU: not slower).
    """
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])


def train_resumable(cfg) -> Path:
    """Train a nerfstudio config into ``<output>/<experiment>/<method>/run`` up to ``max_num_iterations`` in all.

    A finished run (``finished.json`` beside its config) is reused; a partial one resumes from its newest
    checkpoint. Training is seeded from ``machine.seed`` like ``ns-train`` (and from seed + start step after a
    resume). nerfstudio's Trainer runs ``max_num_iterations`` *more* steps after a resume, so the count is
    reduced to what is left. Training runs under :func:`deterministic_torch`. Returns the run's ``config.yml``.
    """
    cfg.set_timestamp()
    cfg.timestamp = "run"
    base, ckpt_dir = cfg.get_base_dir(), cfg.get_checkpoint_dir()
    if (base / "finished.json").is_file():
        return base / "config.yml"
    total = cfg.max_num_iterations
    if ckpt_dir.is_dir() and any(ckpt_dir.glob("step-*.ckpt")):
        cfg.load_dir = ckpt_dir
    with deterministic_torch():
        _seed_all(cfg.machine.seed)
        trainer = cfg.setup(local_rank=0, world_size=1)
        trainer.setup()
        if trainer._start_step:
            _seed_all(cfg.machine.seed + trainer._start_step)  # a resumed run draws a fresh stream
        cfg.save_config()
        remaining = total - trainer._start_step
        if remaining > 0:
            trainer.config.max_num_iterations = remaining
            trainer.train()
    write_json(
        base / "finished.json",
        {"iterations": total, "checkpoint": str(latest_checkpoint(ckpt_dir))},
    )
    return base / "config.yml"


@dataclass
class PipelineConfig:
    """Inputs and budgets of one pipeline run."""

    scene: Path
    out: Path
    rcnn: Path | None = None
    """NeRF-RCNN checkpoint; None with ``oracle_3d``."""
    oracle_3d: bool = False
    """Use the scene's true voxel masks (``scene.npz``) instead of the RCNN."""
    m2f: Path | None = None
    """Local Mask2Former folder, or ``panoptic`` (an existing panoptic folder)."""
    panoptic: Path | None = None
    refine: str | None = "guided"
    """``guided``, ``cascadepsp`` or None (no refinement, no stage B)."""
    cascadepsp_dir: Path | None = None
    """Folder with CascadePSP's ``model`` weights file (``refine="cascadepsp"``)."""
    resolution: int = 64
    nerf_iters: int = 300
    stage_a_iters: int = 1000
    stage_b_iters: int = 800
    rays: int = 1024
    regularizer: float = 1.0
    projection: str = "raycast"
    device: str = "cpu"
    class_map: str = "coco_to_nyu40"
    score_thresh: float = 0.5
    extra: dict = field(default_factory=dict)


class StageLog:
    """``RUN/stages.json``: one record per stage (inputs, outputs, seconds, skipped)."""

    def __init__(self, path: Path):
        self.path = path
        self.records = read_json(path) if path.is_file() else {}

    def run(self, name: str, outputs: list[Path], fn: Callable[[], object], **inputs) -> object:
        if all(Path(o).exists() for o in outputs) and name in self.records:
            self.records[name]["skipped"] = True
            write_json(self.path, self.records)
            return self.records[name].get("result")
        t = time.time()
        result = fn()
        self.records[name] = {
            "inputs": {k: str(v) for k, v in inputs.items()},
            "outputs": [str(o) for o in outputs],
            "seconds": round(time.time() - t, 2),
            "skipped": False,
            "result": result
            if isinstance(result, dict | list | str | int | float) or result is None
            else str(result),
        }
        write_json(self.path, self.records)
        return result


def instance_config(
    scene: Path,
    out: Path,
    name: str,
    masks: Path,
    instances_json: Path,
    iters: int,
    rays: int,
    device: str,
    regularizer: float,
    nerfacto_ckpt: Path | None = None,
    init_ckpt: Path | None = None,
):
    """Stage-A/B trainer config: masks and instances json may live outside the scene (absolute paths)."""
    cfg = instance_cpu_config(
        scene,
        out,
        max_iters=iters,
        rays_per_batch=rays,
        nerfacto_checkpoint=nerfacto_ckpt,
        device=device,
        regularizer_mult=regularizer,
        init_checkpoint=init_ckpt,
    )
    cfg.experiment_name = name
    dp = cfg.pipeline.datamanager.dataparser
    dp.instance_dir = str(Path(masks).resolve())
    dp.instances_json = str(Path(instances_json).resolve())
    cfg.steps_per_save = max(50, iters // 3)
    return cfg


def rcnn_masks3d(ckpt: Path, grid_path: Path, out: Path, score_thresh: float, device: str) -> dict:
    """Run NeRF-RCNN on a grid file and write ``masks3d.npz``; stops with advice when nothing is found."""
    from instance_nerf.data.io import read_npz
    from instance_nerf.rcnn.data import grid_tensor
    from instance_nerf.rcnn.model import NeRFRCNN

    model = NeRFRCNN.load(ckpt, device)
    grid = grid_tensor(grid_path)
    model.check_grid(grid, grid_path)
    det = model.predict(grid.to(device), score_thresh)
    if len(det["scores"]) == 0:
        raise InstanceNerfError(
            f"{grid_path}: the RCNN {ckpt} found no object above score {score_thresh}; check that the grid was "
            "extracted with --alpha at the checkpoint's resolution, lower --score-thresh, or use --oracle-3d"
        )
    g = read_npz(grid_path, ("bbox_min", "bbox_max"))
    save_masks3d(
        out,
        det["masks"].cpu().numpy(),
        det["boxes"].cpu().numpy(),
        det["labels"].cpu().numpy(),
        det["scores"].cpu().numpy(),
        g["bbox_min"],
        g["bbox_max"],
        model.config.classes,
    )
    return {"instances": int(len(det["scores"]))}


def mask2former_panoptic(
    scene: Path, model_dir: Path, out: Path, device: str, class_map: str
) -> dict:
    """Mask2Former on every training image → a panoptic folder."""
    from instance_nerf.data.panoptic import write_panoptic
    from instance_nerf.masks2d.mask2former import Mask2FormerSegmenter

    seg = Mask2FormerSegmenter(model_dir, device, class_map=class_map)
    parser = InstanceDataParserConfig(data=Path(scene)).setup()
    files = parser.get_dataparser_outputs(split="train").image_filenames
    views = {}
    for f in tqdm(files, desc="mask2former", leave=False):
        with Image.open(f) as im:
            views[Path(f).stem] = seg(np.asarray(im.convert("RGB")))
    write_panoptic(out, views)
    return {"views": len(views)}


def make_refiner(refiner: str = "guided", cascadepsp_dir: Path | None = None, device: str = "cpu"):
    """``guided`` (no weights) or ``cascadepsp`` (weights from ``cascadepsp_dir``, nothing downloaded)."""
    if refiner == "guided":
        return GuidedRefiner()
    if refiner == "cascadepsp":
        if cascadepsp_dir is None:
            raise InstanceNerfError(
                "--refiner cascadepsp needs --cascadepsp-dir DIR (a folder holding 'model')"
            )
        from instance_nerf.refine.cascadepsp import CascadePSPRefiner

        return CascadePSPRefiner(cascadepsp_dir, device)
    raise InstanceNerfError(f"refiner {refiner!r} is not available ('guided' or 'cascadepsp')")


def refine_run(
    config_path: Path,
    out: Path,
    refiner: str = "guided",
    device: str = "cpu",
    cascadepsp_dir: Path | None = None,
) -> dict:
    """Render a stage-A run at its training views, refine each instance mask, composite → ``out/<stem>.png``."""
    ref = make_refiner(refiner, cascadepsp_dir, device)
    _, pipeline, _ = load_run(config_path, device=device)
    out = Path(out)
    files = pipeline.datamanager.train_dataset.image_filenames
    changed, total = 0, 0
    for i, item, render in tqdm(
        render_split(pipeline, "train"), total=len(files), desc="refine", leave=False
    ):
        ids = composite(item["image"][..., :3].numpy(), render["ids"], ref)
        save_instance_mask(out / f"{Path(files[i]).stem}.png", ids)
        changed += int((ids != render["ids"]).sum())
        total += ids.size
    return {"views": len(files), "changed_fraction": changed / max(total, 1)}


def _train_stage(
    step: Callable[..., object],
    cfg: PipelineConfig,
    run: Path,
    name: str,
    masks: Path,
    iters: int,
    nerfacto_ckpt: Path | None = None,
    init_ckpt: Path | None = None,
) -> Path:
    """One instance-field stage (A: on a frozen nerfacto, B: from stage A's weights) as a resumable step.

    The ids and classes always come from ``RUN/instances_matched.json``; returns the run's ``config.yml``.
    """
    stage_cfg = instance_config(
        Path(cfg.scene),
        run / "runs",
        name,
        masks,
        run / "instances_matched.json",
        iters,
        cfg.rays,
        cfg.device,
        cfg.regularizer,
        nerfacto_ckpt=nerfacto_ckpt,
        init_ckpt=init_ckpt,
    )
    out_dir = run / "runs" / name / "instance-nerf" / "run"
    step(
        name,
        [out_dir / "finished.json"],
        lambda: str(train_resumable(stage_cfg)),
        masks=masks,
        iters=iters,
        init=init_ckpt or nerfacto_ckpt,
    )
    return out_dir / "config.yml"


def run_pipeline(cfg: PipelineConfig) -> dict:
    """All stages for one scene; returns the final metrics (also in ``RUN/metrics.json``)."""
    from instance_nerf.eval.evaluate import evaluate_pipeline

    scene, run = Path(cfg.scene), Path(cfg.out)
    if not (scene / "transforms.json").is_file():
        raise InstanceNerfError(f"{scene / 'transforms.json'}: scene not found")
    if (cfg.rcnn is None) == (not cfg.oracle_3d):
        raise InstanceNerfError("give exactly one of --rcnn CKPT or --oracle-3d")
    if (cfg.m2f is None) == (cfg.panoptic is None):
        raise InstanceNerfError("give exactly one of --m2f DIR or --panoptic DIR")
    if cfg.refine == "cascadepsp":
        make_refiner(cfg.refine, cfg.cascadepsp_dir, cfg.device)  # fail before hours of training
    run.mkdir(parents=True, exist_ok=True)
    log = StageLog(run / "stages.json")
    write_json(run / "pipeline.json", {k: str(v) for k, v in asdict(cfg).items()})
    torch.manual_seed(0)
    bar = tqdm(total=9, desc="pipeline", leave=True)

    def step(name: str, outputs: list[Path], fn, **inputs):
        bar.set_postfix_str(name)
        res = log.run(name, outputs, fn, **inputs)
        bar.update(1)
        return res

    nerf_cfg = nerfacto_cpu_config(
        scene,
        InstanceDataParserConfig(),
        run / "runs",
        max_iters=cfg.nerf_iters,
        rays_per_batch=cfg.rays,
        device=cfg.device,
    )
    nerf_cfg.steps_per_save = max(50, cfg.nerf_iters // 4)
    nerf_dir = run / "runs" / "nerfacto" / "nerfacto" / "run"
    step(
        "nerfacto",
        [nerf_dir / "finished.json"],
        lambda: str(train_resumable(nerf_cfg)),
        scene=scene,
        iters=cfg.nerf_iters,
    )
    nerf_config = nerf_dir / "config.yml"

    grid = run / "grid.npz"

    def make_grid():
        _, pipe, _ = load_run(nerf_config, device=cfg.device)
        g = pipeline_grid(pipe, cfg.resolution, 8, alpha=True, device=cfg.device)
        save_grid(grid, g)
        return {"shape": list(g["rgbsigma"].shape)}

    step("grid", [grid], make_grid, nerf=nerf_config, resolution=cfg.resolution)
    masks3d = run / "masks3d.npz"
    if cfg.oracle_3d:
        step("masks3d", [masks3d], lambda: str(oracle_masks3d(scene, masks3d)), source="oracle")
    else:
        step(
            "masks3d",
            [masks3d],
            lambda: rcnn_masks3d(cfg.rcnn, grid, masks3d, cfg.score_thresh, cfg.device),
            rcnn=cfg.rcnn,
            grid=grid,
        )
    panoptic = Path(cfg.panoptic) if cfg.panoptic else run / "panoptic"
    if cfg.m2f is not None:
        step(
            "masks2d",
            [panoptic / "segments.json"],
            lambda: mask2former_panoptic(scene, cfg.m2f, panoptic, cfg.device, cfg.class_map),
            model=cfg.m2f,
        )
    else:
        bar.update(1)
    projected, matched = run / "projected", run / "instances_matched"
    m = load_masks3d(masks3d)
    occ = occupancy_from_grid(grid)
    if occ.shape != m["instance_grid"].shape:
        raise InstanceNerfError(
            f"{masks3d}: 3D masks are {m['instance_grid'].shape}, {grid} is {occ.shape}"
        )
    step(
        "project",
        [projected],
        lambda: {
            "pixels": sum(project_scene(scene, occ, masks3d, projected, cfg.projection).values())
        },
        masks3d=masks3d,
        mode=cfg.projection,
    )
    step(
        "match",
        [matched, run / "instances_matched.json"],
        lambda: match_scene(scene, panoptic, projected, masks3d, matched),
        panoptic=panoptic,
    )
    final = _train_stage(
        step,
        cfg,
        run,
        "stage_a",
        matched,
        cfg.stage_a_iters,
        nerfacto_ckpt=latest_checkpoint(nerf_dir / "nerfstudio_models"),
    )
    if cfg.refine:
        refined = run / "instances_refined"
        step(
            "refine",
            [refined],
            lambda: refine_run(final, refined, cfg.refine, cfg.device, cfg.cascadepsp_dir),
            run=final,
        )
        a_ckpt = latest_checkpoint(final.parent / "nerfstudio_models")
        final = _train_stage(
            step, cfg, run, "stage_b", refined, cfg.stage_b_iters, init_ckpt=a_ckpt
        )
    else:
        bar.update(2)

    def evaluate():
        _, pipe, _ = load_run(final, device=cfg.device)
        met = evaluate_pipeline(pipe, run / "eval")
        return {k: met[k] for k in ("miou", "pq", "consistency", "instance_pixel_accuracy", "psnr")}

    metrics = step("eval", [run / "eval" / "metrics.json"], evaluate, run=final)
    bar.close()
    write_json(run / "metrics.json", metrics)
    return metrics
