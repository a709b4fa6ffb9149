"""Load, merge and validate run configs: ``cnn.yaml`` holds every key and its default."""

from __future__ import annotations

import inspect
from importlib import resources
from pathlib import Path

import yaml

from bus_classify.data.io import BusClassifyError

_PACKAGE = "bus_classify.configs"


def available() -> list[str]:
    """Names of the shipped configs (``cnn``, ``resnet18``, ``swin``, ...)."""
    return sorted(
        p.name[:-5]
        for p in resources.files(_PACKAGE).iterdir()
        if p.name.endswith(".yaml") and p.name != "prompts.yaml"
    )


def _shipped(name: str) -> str:
    return resources.files(_PACKAGE).joinpath(f"{name}.yaml").read_text()


def defaults() -> dict:
    """Every config key with its default (the base every config is merged onto)."""
    return yaml.safe_load(_shipped("cnn"))


def load_config(name_or_path: str, overrides: list[str] | dict | None = None) -> dict:
    """Shipped config by name or a YAML file by path, merged onto :func:`defaults`, then
    ``overrides`` (a dict of typed values, or ``key=value`` strings parsed as YAML)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise BusClassifyError(f"{path}: config file not found")
        text = path.read_text()
    else:
        if name_or_path not in available():
            raise BusClassifyError(f"unknown config {name_or_path!r}; shipped: {available()}")
        text = _shipped(name_or_path)
    try:
        cfg = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise BusClassifyError(f"{name_or_path}: not valid YAML ({e})") from e
    if not isinstance(cfg, dict):
        raise BusClassifyError(f"{name_or_path}: a config must be a mapping of keys to values")
    base = defaults()
    for key in cfg:
        if key not in base:
            raise BusClassifyError(f"{name_or_path}: unknown config key {key!r}")
    cfg = {**base, **cfg}
    if isinstance(overrides, dict):
        items = list(overrides.items())
    else:
        items = []
        for o in overrides or []:
            if "=" not in o:
                raise BusClassifyError(f"override {o!r} is not KEY=VALUE")
            key, text = o.split("=", 1)
            items.append((key, yaml.safe_load(text)))
    for key, value in items:
        if key not in base:
            raise BusClassifyError(f"unknown config key {key!r} in override; keys: {sorted(base)}")
        cfg[key] = value
    for key, default in base.items():
        cfg[key] = _coerce(name_or_path, key, cfg[key], default)
    return cfg


def _coerce(where: str, key: str, value, default):
    """Give ``value`` the type of the key's default (YAML reads ``1e-3`` as a string)."""
    if value is None or default is None or isinstance(default, (dict, list, str)):
        return value
    kind = type(default)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    try:
        if kind is bool:
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise ValueError
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise BusClassifyError(
            f"{where}: config key {key!r} must be {kind.__name__}, got {value!r}"
        ) from None


def kwargs_for(target, cfg: dict) -> dict:
    """The entries of ``cfg`` that are keyword parameters of ``target`` (a class or function)."""
    params = inspect.signature(target).parameters
    return {k: v for k, v in cfg.items() if k in params}
