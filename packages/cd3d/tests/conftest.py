"""Shared fixtures: the real-data folder and small synthetic datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)


def shared_dir() -> Path:
    env = os.environ.get("CV_SHARED_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared"


@pytest.fixture
def raster_dir() -> Path:
    d = shared_dir() / "fixtures" / "raster"
    if not (d / "RGB.byte.tif").is_file():
        pytest.skip(f"real raster fixtures not found at {d} (set CV_SHARED_DIR)")
    return d


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    from cd3d.data.synth import synth_dataset

    return synth_dataset(
        tmp_path_factory.mktemp("synth") / "ds", seed=3, n_train=6, n_val=2, n_test=3, tile=64
    )
