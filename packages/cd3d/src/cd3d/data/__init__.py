"""Readers, datasets, augmentations and synthetic data."""

from .dataset import LAYOUTS, ChangeDataset, list_tiles
from .io import DataError, crs_equivalent, read_raster
from .stats import compute_stats
from .synth import render, synth_dataset, synth_pair
from .transforms import PairedAugment

__all__ = [
    "LAYOUTS",
    "ChangeDataset",
    "DataError",
    "PairedAugment",
    "compute_stats",
    "crs_equivalent",
    "list_tiles",
    "read_raster",
    "render",
    "synth_dataset",
    "synth_pair",
]
