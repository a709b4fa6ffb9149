"""Small numpy helpers for LiDAR boxes ``(x, y, z_bottom, dx, dy, dz, yaw)``."""

from __future__ import annotations

import numpy as np


def to_local(points: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Points (N, >=3) in the frame of one box: origin at the bottom centre, x along heading."""
    c, s = np.cos(box[6]), np.sin(box[6])
    d = points[:, :3] - box[:3]
    return np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1], d[:, 2]], 1)


def from_local(local: np.ndarray, box: np.ndarray) -> np.ndarray:
    c, s = np.cos(box[6]), np.sin(box[6])
    x = c * local[:, 0] - s * local[:, 1] + box[0]
    y = s * local[:, 0] + c * local[:, 1] + box[1]
    return np.stack([x, y, local[:, 2] + box[2]], 1)


def points_in_box(points: np.ndarray, box: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """Boolean mask of points inside one box (optionally enlarged by ``margin``)."""
    loc = to_local(points, box)
    return (
        (np.abs(loc[:, 0]) <= 0.5 * box[3] + margin)
        & (np.abs(loc[:, 1]) <= 0.5 * box[4] + margin)
        & (loc[:, 2] >= -margin)
        & (loc[:, 2] <= box[5] + margin)
    )


def count_points_in_boxes(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    return np.array([int(points_in_box(points, b).sum()) for b in boxes], dtype=np.int64)


def resize_objects(
    points: np.ndarray, boxes: np.ndarray, new_dims: np.ndarray, margin: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Resize boxes to ``new_dims`` and stretch the points inside each box with it.

    Points are scaled per axis in the box frame (z from the bottom face), so a
    car keeps its shape but takes the new size. Returns new points and boxes.
    """
    points = points.copy()
    boxes = boxes.copy()
    for i, box in enumerate(boxes):
        mask = points_in_box(points, box, margin)
        if not np.all(box[3:6] > 0):
            continue
        factor = new_dims[i] / box[3:6]
        if mask.any():
            loc = to_local(points[mask], box) * factor
            points[mask, :3] = from_local(loc, box)
        boxes[i, 3:6] = new_dims[i]
    return points, boxes


def lidar_box_corners(boxes: np.ndarray) -> np.ndarray:
    """(N, 7) bottom-centred LiDAR boxes -> (N, 8, 3) corners."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 7)
    sx = np.array([1, 1, -1, -1, 1, 1, -1, -1]) * 0.5
    sy = np.array([1, -1, -1, 1, 1, -1, -1, 1]) * 0.5
    sz = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    lx = boxes[:, 3:4] * sx
    ly = boxes[:, 4:5] * sy
    lz = boxes[:, 5:6] * sz
    c, s = np.cos(boxes[:, 6:7]), np.sin(boxes[:, 6:7])
    x = c * lx - s * ly + boxes[:, 0:1]
    y = s * lx + c * ly + boxes[:, 1:2]
    z = lz + boxes[:, 2:3]
    return np.stack([x, y, z], -1)
