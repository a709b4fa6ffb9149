"""Data seam: raster readers and checks, the CD3DError base class, the atomic writers, datasets,
paired augmentations and the synthetic scene generator."""

from .dataset import LAYOUTS, ChangeDataset, list_tiles
from .io import (
    CD3DError,
    DataError,
    atomic_path,
    atomic_write,
    crs_equivalent,
    read_raster,
    write_csv,
    write_json,
)
from .stats import compute_stats
from .synth import render, synth_dataset, synth_pair
from .transforms import PairedAugment

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
