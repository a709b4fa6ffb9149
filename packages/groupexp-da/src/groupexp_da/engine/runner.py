"""Config loading and mmengine Runner helpers shared by the CLI commands."""

from __future__ import annotations

import os
from pathlib import Path

from mmengine.config import Config

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def resolve_config(name: str | os.PathLike) -> Path:
    """A config path, or the name of a config shipped in ``groupexp_da/configs``."""
    p = Path(name)
    if p.is_file():
        return p
    for cand in (CONFIG_DIR / p, CONFIG_DIR / f"{p}.py"):
        if cand.is_file():
            return cand
    shipped = ", ".join(sorted(c.stem for c in CONFIG_DIR.glob("*.py")))
    raise FileNotFoundError(f"config {name!s} not found (shipped configs: {shipped})")


def _set_root(loader: dict, root: str) -> None:
    ds = loader["dataset"]
    while "dataset" in ds:  # RepeatDataset / ConcatDataset wrappers
        ds = ds["dataset"]
    ds["data_root"] = root


def load_config(name: str | os.PathLike, source: str | None = None, target: str | None = None,
                work_dir: str | None = None, cfg_options: dict | None = None,
                device: str | None = None) -> Config:
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


def build_runner(cfg: Config):
    """An mmengine Runner for ``cfg`` (imports the package registrations first)."""
    from mmengine.runner import Runner

    import groupexp_da.register  # noqa: F401

    return Runner.from_cfg(cfg)
