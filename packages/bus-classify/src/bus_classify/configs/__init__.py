"""Training configurations shipped with the package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml


def available() -> list[str]:
    """Names of the shipped configs (``cnn``, ``swin``, ...)."""
    return sorted(p.name[:-5] for p in resources.files(__name__).iterdir() if p.name.endswith(".yaml"))


def _parse_value(text: str):
    return yaml.safe_load(text)


def load_config(name_or_path: str, overrides: list[str] | dict | None = None) -> dict:
    """Load a shipped config by name or a YAML file by path, then apply ``key=value`` overrides."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: config file not found")
        text = path.read_text()
    else:
        if name_or_path not in available():
            raise ValueError(f"unknown config {name_or_path!r}; shipped: {available()}")
        text = resources.files(__name__).joinpath(f"{name_or_path}.yaml").read_text()
    cfg = yaml.safe_load(text) or {}
    base = yaml.safe_load(resources.files(__name__).joinpath("cnn.yaml").read_text())
    for key in cfg:
        if key not in base:
            raise ValueError(f"{name_or_path}: unknown config key {key!r}")
    cfg = {**base, **cfg}
    items = overrides.items() if isinstance(overrides, dict) else (
        o.split("=", 1) for o in (overrides or []))
    for key, value in items:
        if key not in base:
            raise ValueError(f"unknown config key {key!r} in override; keys: {sorted(base)}")
        cfg[key] = _parse_value(value) if isinstance(value, str) else value
    return cfg
