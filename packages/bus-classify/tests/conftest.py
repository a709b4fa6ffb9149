"""Shared fixtures: a small synthetic BUSI folder, its split, tiny VLM folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def busi_dir(tmp_path_factory) -> Path:
    from bus_classify.data.synth import write_synthetic

    root = tmp_path_factory.mktemp("busi")
    write_synthetic(root, n=40, size=64, seed=1, n_duplicates=3)
    return root


@pytest.fixture(scope="session")
def split_csv(busi_dir, tmp_path_factory) -> Path:
    from bus_classify.data.io import write_csv
    from bus_classify.data.sources import discover
    from bus_classify.data.split import make_split

    rows, _ = make_split(discover(busi_dir), seed=0)
    return write_csv(tmp_path_factory.mktemp("split") / "split.csv", rows)


@pytest.fixture(scope="session")
def shared_dir() -> Path | None:
    env = os.environ.get("CV_SHARED_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared"
    return path if path.exists() else None
