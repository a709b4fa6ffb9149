"""Shared helpers for the cross-package tests."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "groupexp-da": "groupexp_da",
    "instance-nerf": "instance_nerf",
    "cd3d": "cd3d",
    "spheroid-rank": "spheroid_rank",
    "bus-classify": "bus_classify",
}

sys.path.insert(0, str(ROOT / "tools"))


def uv_executable() -> str:
    """uv from PATH or the copy `make` bootstraps into .tools/."""
    found = shutil.which("uv") or (ROOT / ".tools" / "bin" / "uv")
    if not Path(found).exists():
        pytest.skip("uv is not installed (run `make install`)")
    return str(found)


@pytest.fixture
def fake_root(tmp_path: Path) -> Path:
    """A repository-shaped folder whose package envs use this interpreter."""
    return tmp_path


def make_fake_env(root: Path, package: str) -> Path:
    """packages/<package>/.venv/bin/python pointing at the running interpreter."""
    bin_dir = root / "packages" / package / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    return bin_dir.parents[1]
