"""Run configuration: the two config dataclasses (they hold the defaults), YAML loading,
merging and validation.

``SSLConfig`` and ``ScoreConfig`` are the single source of defaults: the CLI flags take
their defaults from them, and a YAML file (``configs/demo.yaml`` or a user file) only lists
overrides. :func:`default_config` writes the defaults out as YAML for reference.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from spheroid_rank.data.io import FOCAL_MODES, SpheroidRankError

METRICS = ("l2", "cosine", "mahalanobis")
T = TypeVar("T")


def default_load_size(img_size: int) -> int:
    """Images are decoded at 9/8 of the crop size so random crops have room to move."""
    return img_size + img_size // 8


@dataclass
class SSLConfig:
    """Settings of one SSL run (also stored next to the exported backbone)."""

    method: str = "simclr"
    backbone: str = "resnet18"
    img_size: int = 64
    load_size: int | None = None  # default: img_size + img_size // 8
    focal: str = "sharpest"
    epochs: int = 50
    batch_size: int = 128
    lr: float = 1e-3
    min_scale: float = 0.5
    seed: int = 0
    workers: int = 0
    accelerator: str = "auto"
    devices: int | str = 1  # per machine
    num_nodes: int = 1
    strategy: str = "auto"  # "auto": DDP when more than one device is used
    precision: str | None = None  # default: 16-mixed on CUDA, else 32-true
    method_kwargs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        from spheroid_rank.models.ssl import METHODS

        if self.method not in METHODS:
            raise SpheroidRankError(f"ssl.method: {self.method!r} not in {sorted(METHODS)}")
        if self.focal not in FOCAL_MODES:
            raise SpheroidRankError(f"ssl.focal: {self.focal!r} not in {FOCAL_MODES}")
        if self.load_size is None:
            self.load_size = default_load_size(self.img_size)
        if self.load_size < self.img_size:
            raise SpheroidRankError(
                f"ssl.load_size: {self.load_size} is smaller than img_size {self.img_size}"
            )

    @property
    def in_chans(self) -> int:
        return 3 if self.focal == "channels" else 1


@dataclass
class ScoreConfig:
    """Temporal model, distance and preprocessing of the well scores."""

    model: str = "linear"
    metric: str = "mahalanobis"
    history: tuple[int, ...] = (7, 8, 9)
    target: int = 10
    pca_dim: int = 16
    folds: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        from spheroid_rank.models.temporal import TEMPORAL_MODELS

        self.history = tuple(int(d) for d in self.history)
        if self.model not in TEMPORAL_MODELS:
            raise SpheroidRankError(f"score.model: {self.model!r} not in {sorted(TEMPORAL_MODELS)}")
        if self.metric not in METRICS:
            raise SpheroidRankError(f"score.metric: {self.metric!r} not in {METRICS}")
        if self.target in self.history:
            raise SpheroidRankError(f"score.target: day {self.target} is also a history day")


def read_yaml(name_or_path: str | Path) -> dict:
    """A YAML mapping from a file path, or from a name shipped in ``spheroid_rank/configs``."""
    path = Path(name_or_path)
    if path.is_file():
        text, where = path.read_text(), str(path)
    else:
        res = resources.files("spheroid_rank.configs").joinpath(str(name_or_path))
        if not res.is_file():
            raise SpheroidRankError(f"{name_or_path}: config file does not exist")
        text, where = res.read_text(), str(name_or_path)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise SpheroidRankError(f"{where}: not valid YAML ({exc.__class__.__name__})") from exc
    if not isinstance(data, dict):
        raise SpheroidRankError(f"{where}: expected a mapping at the top level")
    return data


def merge(base: dict, override: dict) -> dict:
    """Recursive dict merge; values of ``override`` win."""
    out = dict(base)
    for k, v in override.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def build(cls: type[T], values: dict[str, Any] | None, where: str) -> T:
    """Instantiate a config dataclass from a mapping; unknown keys are an error naming them."""
    values = dict(values or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise SpheroidRankError(f"{where}: unknown key(s) {unknown}; known: {sorted(names)}")
    return cls(**values)


def default_config() -> dict:
    """The defaults of both sections as a plain mapping (what a full YAML file would hold)."""
    return {
        "ssl": asdict(SSLConfig()),
        "score": {**asdict(ScoreConfig()), "history": list(ScoreConfig().history)},
    }


def load_demo_config(preset: str = "easy", path: str | Path | None = None) -> dict:
    """The demo's settings: ``synth`` mapping plus ``ssl``/``score`` dataclasses.

    ``configs/demo.yaml`` holds the overrides shared by every preset and a ``presets`` section
    with per-preset overrides (merged on top).
    """
    raw = read_yaml(path or "demo.yaml")
    presets = raw.pop("presets", {}) or {}
    if preset not in presets:
        raise SpheroidRankError(
            f"{path or 'demo.yaml'}: unknown preset {preset!r}; known: {sorted(presets)}"
        )
    raw = merge(raw, presets[preset] or {})
    where = str(path or "demo.yaml")
    return {
        "synth": dict(raw.get("synth", {})),
        "ssl": build(SSLConfig, raw.get("ssl"), f"{where}: ssl"),
        "score": build(ScoreConfig, raw.get("score"), f"{where}: score"),
    }
