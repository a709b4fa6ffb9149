"""YAML run configurations: the shipped defaults, a user file on top, then ``key.sub=value`` overrides."""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path

import yaml

from ..data.io import CD3DError


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def packaged_config(name: str) -> Path:
    """Path of a config shipped in ``cd3d/configs`` (e.g. ``siam_unet.yaml``)."""
    return Path(str(resources.files("cd3d") / "configs" / name))


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> dict:
    """Defaults ← YAML file (a path, or the name of a packaged config) ← ``a.b=value`` overrides."""
    cfg = yaml.safe_load(packaged_config("default.yaml").read_text())
    if path is not None:
        p = Path(path)
        if not p.is_file() and packaged_config(str(path)).is_file():
            p = packaged_config(str(path))
        if not p.is_file():
            raise CD3DError(f"{path}: config file not found")
        user = yaml.safe_load(p.read_text()) or {}
        if not isinstance(user, dict):
            raise CD3DError(f"{p}: a config must be a YAML mapping")
        cfg = _merge(cfg, user)
    for ov in overrides or []:
        if "=" not in ov:
            raise CD3DError(f"override {ov!r} must look like key.sub=value")
        key, val = ov.split("=", 1)
        node = cfg
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(val)
    return cfg
