"""Data seam: raster readers and checks, the CD3DError base class, the atomic writers, datasets,
paired augmentations and the synthetic scene generator."""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "LAYOUTS": "dataset", "ChangeDataset": "dataset", "list_tiles": "dataset",
    "CD3DError": "io", "DataError": "io", "atomic_path": "io", "atomic_write": "io",
    "crs_equivalent": "io", "read_raster": "io", "write_csv": "io", "write_json": "io",
    "compute_stats": "stats", "render": "synth", "synth_dataset": "synth", "synth_pair": "synth",
    "PairedAugment": "transforms",
}  # fmt: skip

__all__ = [
    "LAYOUTS",
    "CD3DError",
    "ChangeDataset",
    "DataError",
    "PairedAugment",
    "atomic_path",
    "atomic_write",
    "compute_stats",
    "crs_equivalent",
    "list_tiles",
    "read_raster",
    "render",
    "synth_dataset",
    "synth_pair",
    "write_csv",
    "write_json",
]


def __getattr__(name: str) -> Any:
    """Import a submodule on first use (torch and rasterio load only when data is touched)."""
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
