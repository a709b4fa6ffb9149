"""Shared fixtures: a tiny synthetic experiment and the location of the shared real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)


def shared_dir() -> Path:
    env = os.environ.get("CV_SHARED_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared"


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    from spheroid_rank.data.synth import make_synthetic_experiment

    out = tmp_path_factory.mktemp("synth")
    make_synthetic_experiment(out, seed=1, n_plates=1, size=64)
    return out


@pytest.fixture(scope="session")
def microscopy_dir() -> Path:
    d = shared_dir() / "fixtures" / "microscopy"
    if not d.is_dir():
        pytest.skip(f"shared real-data fixtures not found at {d}")
    return d
