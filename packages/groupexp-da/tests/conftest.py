import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("CV_SHARED_DIR", Path(__file__).resolve().parents[3].parent / "shared"))
LIDAR = SHARED / "fixtures" / "lidar"


@pytest.fixture
def lidar_fixtures() -> Path:
    if not (LIDAR / "kitti_000008.bin").is_file():
        pytest.skip(f"shared LiDAR fixtures not found under {LIDAR} (set CV_SHARED_DIR)")
    return LIDAR
