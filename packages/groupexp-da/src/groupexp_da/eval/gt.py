"""Turn mmdet3d v2 info pkls (KITTI / nuScenes / Waymo / synthetic) into metric GT frames."""

from __future__ import annotations

import numpy as np

KITTI_CLASSES = ("Pedestrian", "Cyclist", "Car", "Van", "Truck", "Person_sitting", "Tram", "Misc")
WAYMO_CLASSES = ("Car", "Pedestrian", "Cyclist")
CAR_ALIASES = {"car": "Car", "Car": "Car", "Vehicle": "Car", "vehicle": "Car"}


def _label_names(meta: dict, fmt: str) -> dict[int, str]:
    cats = meta.get("categories")
    if cats:
        names = {int(v): str(k) for k, v in cats.items()}
    elif fmt == "kitti":
        names = dict(enumerate(KITTI_CLASSES))
    elif fmt == "waymo":
        names = dict(enumerate(WAYMO_CLASSES))
    else:
        names = {0: "Car"}
    names.setdefault(-1, "DontCare")
    return names


def camera_to_lidar(boxes_cam: np.ndarray, lidar2cam: np.ndarray) -> np.ndarray:
    """KITTI camera boxes ``(x, y, z, l, h, w, ry)`` (bottom centre) -> LiDAR boxes."""
    boxes_cam = np.asarray(boxes_cam, np.float64).reshape(-1, 7)
    cam2lidar = np.linalg.inv(np.asarray(lidar2cam, np.float64))
    xyz = np.c_[boxes_cam[:, :3], np.ones(len(boxes_cam))] @ cam2lidar.T
    ln, h, w = boxes_cam[:, 3], boxes_cam[:, 4], boxes_cam[:, 5]
    yaw = -boxes_cam[:, 6] - np.pi / 2
    yaw = (yaw + np.pi) % (2 * np.pi) - np.pi
    return np.c_[xyz[:, :3], ln, w, h, yaw]


def frame_id(info: dict) -> int | str:
    for key in ("sample_idx", "sample_id", "token"):
        if key in info:
            return info[key]
    raise KeyError("info has no sample_idx / sample_id / token")


def gt_frame(info: dict, meta: dict, fmt: str) -> dict:
    """One GT frame in the LiDAR frame (bottom-centred boxes) with KITTI difficulty fields."""
    insts = info.get("instances", [])
    names_of = _label_names(meta, fmt)
    n = len(insts)
    if n == 0:
        return {
            "boxes": np.zeros((0, 7)),
            "names": np.zeros(0, dtype=str),
            "height": np.zeros(0),
            "occluded": np.zeros(0),
            "truncated": np.zeros(0),
        }
    labels = [int(i.get("bbox_label_3d", i.get("bbox_label", -1))) for i in insts]
    for lab in labels:
        if lab not in names_of:
            raise ValueError(f"frame {frame_id(info)}: unknown class label {lab}")
    names = np.array([CAR_ALIASES.get(names_of[lab], names_of[lab]) for lab in labels])
    raw = np.array([i["bbox_3d"] for i in insts], dtype=np.float64).reshape(-1, 7)
    if fmt == "kitti":
        cam = info["images"]["CAM2"]
        l2c = cam.get("lidar2cam")
        if l2c is None:
            l2c = np.asarray(info["images"]["R0_rect"]) @ np.asarray(
                info["lidar_points"]["Tr_velo_to_cam"]
            )
        boxes = camera_to_lidar(raw, l2c)
    elif fmt == "nuscenes":
        boxes = raw.copy()
        boxes[:, 2] -= 0.5 * boxes[:, 5]  # gravity centre -> bottom centre
    else:
        boxes = raw
    bbox2d = np.array([i.get("bbox", [0, 0, 0, 1e4]) for i in insts], dtype=np.float64)
    return {
        "boxes": boxes,
        "names": names,
        "height": bbox2d[:, 3] - bbox2d[:, 1],
        "occluded": np.array([i.get("occluded", 0) for i in insts], dtype=np.float64),
        "truncated": np.array([i.get("truncated", 0.0) for i in insts], dtype=np.float64),
    }
