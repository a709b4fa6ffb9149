"""Shared fixtures for the instance-nerf tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def shared_dir() -> Path:
    env = os.environ.get("CV_SHARED_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared"


@pytest.fixture
def lego_dir() -> Path:
    path = shared_dir() / "fixtures" / "nerf" / "lego_test"
    if not (path / "transforms_train.json").is_file():
        pytest.skip(f"shared fixture not found at {path} (set CV_SHARED_DIR)")
    return path


@pytest.fixture(scope="session")
def tiny_scene(tmp_path_factory) -> Path:
    """A 6-view 24x24 procedural room (3 objects), shared by the tests of one session."""
    from instance_nerf.data.synth import SynthConfig, generate

    out = tmp_path_factory.mktemp("scene")
    generate(
        out,
        SynthConfig(
            seed=3,
            num_objects=3,
            num_views=6,
            test_every=3,
            width=24,
            height=24,
            voxel_resolution=16,
        ),
        noisy_masks=True,
    )
    return out
