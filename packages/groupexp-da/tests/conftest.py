import os
from pathlib import Path

import pytest

SHARED = Path(
    os.environ.get("CV_SHARED_DIR", Path(__file__).resolve().parents[3].parent / "shared")
)
LIDAR = SHARED / "fixtures" / "lidar"


@pytest.fixture
def lidar_fixtures() -> Path:
    if not (LIDAR / "kitti_000008.bin").is_file():
        pytest.skip(f"shared LiDAR fixtures not found under {LIDAR} (set CV_SHARED_DIR)")
    return LIDAR


@pytest.fixture
def fixture_view(lidar_fixtures, tmp_path):
    """Folder where the fixture point files appear under the names their info pkls use."""
    import pickle

    for pkl, src in (
        ("kitti_000008.pkl", "kitti_000008.bin"),
        (
            "nuscenes_n015-2018-07-24-11-22-45+0800.pkl",
            "nuscenes_LIDAR_TOP_1532402927647951.pcd.bin",
        ),
    ):
        name = pickle.load(open(lidar_fixtures / pkl, "rb"))["data_list"][0]["lidar_points"][
            "lidar_path"
        ]
        (tmp_path / name).symlink_to(lidar_fixtures / src)
    return tmp_path
