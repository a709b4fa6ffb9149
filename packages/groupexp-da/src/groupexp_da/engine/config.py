"""Run configs: resolve a shipped name or path, load, point at data roots, validate; the Runner."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mmengine.config import Config

from groupexp_da.data.io import GroupExpError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def shipped_configs() -> list[str]:
    return sorted(c.stem for c in CONFIG_DIR.glob("*.py"))


def resolve_config(name: str | os.PathLike) -> Path:
    """A config path, or the name of a config shipped in ``groupexp_da/configs``."""
    p = Path(name)
    if p.is_file():
        return p
    for cand in (CONFIG_DIR / p, CONFIG_DIR / f"{p}.py"):
        if cand.is_file():
            return cand
    raise GroupExpError(
        f"{name}: no such config file or shipped config name "
        f"(shipped: {', '.join(shipped_configs())})"
    )


def parse_cfg_options(items: list[str] | None) -> dict:
    """``KEY=VALUE`` strings (VALUE parsed as JSON when it is JSON) → a merge dict."""
    out = {}
    for it in items or []:
        if "=" not in it:
            raise GroupExpError(f"--cfg-options expects KEY=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def _innermost(ds: dict) -> dict:
    while "dataset" in ds:  # RepeatDataset / ConcatDataset wrappers
        ds = ds["dataset"]
    return ds


def _set_root(loader: dict, root: str) -> None:
    _innermost(loader["dataset"])["data_root"] = root


def load_config(
    name: str | os.PathLike,
    source: str | None = None,
    target: str | None = None,
    work_dir: str | None = None,
    cfg_options: dict | None = None,
    device: str | None = None,
) -> Config:
    """Load a config and point its datasets / evaluators at ``source``/``target`` roots."""
    cfg = Config.fromfile(str(resolve_config(name)))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    roles = {"source": source, "target": target}
    train_role = cfg.get("train_domain", "source")
    if roles.get(train_role):
        _set_root(cfg.train_dataloader, os.path.join(roles[train_role], ""))
    if target:
        root = os.path.join(target, "")
        for key in ("val_dataloader", "test_dataloader"):
            if cfg.get(key):
                _set_root(cfg[key], root)
        for key in ("val_evaluator", "test_evaluator"):
            if cfg.get(key) and "ann_file" in cfg[key]:
                cfg[key]["ann_file"] = root + os.path.basename(cfg[key]["ann_file"])
        cfg.target_root = root
        if cfg.get("st3d_target_dataset"):
            cfg.st3d_target_dataset["data_root"] = root
    if source:
        cfg.source_root = os.path.join(source, "")
    if work_dir:
        cfg.work_dir = str(work_dir)
    elif cfg.get("work_dir") is None:
        cfg.work_dir = os.path.join("work_dirs", Path(str(name)).stem)
    if device == "cpu":
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    return cfg


def dataset_ann_files(ds: dict) -> list[Path]:
    """The info pkls a dataset config reads (``data_root`` + ``ann_file``, through wrappers)."""
    if "datasets" in ds:  # ConcatDataset
        return [p for d in ds["datasets"] for p in dataset_ann_files(d)]
    if "dataset" in ds:
        return dataset_ann_files(ds["dataset"])
    return [Path(os.path.join(ds.get("data_root") or "", ds["ann_file"]))]


def validate_config(cfg: Config, phases: tuple[str, ...] = ("train", "val", "test")) -> None:
    """Fail early, naming the file and key, when an info pkl the run needs is missing.

    ``phases`` are dataloader prefixes (``train``, ``val``, ``test``) and ``st3d`` (the
    self-training target set)."""
    need = []
    for phase in phases:
        loader = cfg.get(f"{phase}_dataloader")
        if loader:
            need += [
                (f"{phase}_dataloader.dataset.ann_file", p)
                for p in dataset_ann_files(loader["dataset"])
            ]
        ev = cfg.get(f"{phase}_evaluator")
        if ev and "ann_file" in ev:
            need.append((f"{phase}_evaluator.ann_file", Path(ev["ann_file"])))
    if "st3d" in phases:
        if not cfg.get("st3d_target_dataset"):
            raise GroupExpError(
                f"{cfg.filename}: config key st3d_target_dataset missing "
                "(not a self-training config)"
            )
        need += [
            ("st3d_target_dataset.ann_file", p) for p in dataset_ann_files(cfg.st3d_target_dataset)
        ]
    for key, path in need:
        if not path.is_file():
            raise GroupExpError(
                f"{path}: info pkl not found (config key {key}; "
                "point --source/--target at a folder holding it)"
            )


def build_runner(cfg: Config):
    """An mmengine Runner for ``cfg`` (imports the package registrations first)."""
    from mmengine.runner import Runner

    import groupexp_da.register  # noqa: F401
    from groupexp_da.engine.distributed import prepare_distributed

    prepare_distributed(cfg)  # launcher='pytorch' on CPU: gloo group + device-less DDP wrapper
    return Runner.from_cfg(cfg)
