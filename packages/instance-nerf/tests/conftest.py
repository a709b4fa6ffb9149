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
