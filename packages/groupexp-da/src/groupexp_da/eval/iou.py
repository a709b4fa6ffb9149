"""Rotated box overlaps on the CPU: BEV IoU by convex polygon clipping, 3D IoU.

Boxes are in the mmdet3d LiDAR convention ``(x, y, z_bottom, dx, dy, dz, yaw)``
(``dx`` along the heading, yaw counter-clockwise from +x). The BEV part uses
``(x, y, dx, dy, yaw)``. Everything is compiled with numba (``cache=True``).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _corners(cx: float, cy: float, dx: float, dy: float, yaw: float) -> np.ndarray:
    """Counter-clockwise BEV corners of one box, shape (4, 2)."""
    c, s = np.cos(yaw), np.sin(yaw)
    out = np.empty((4, 2))
    hx, hy = 0.5 * dx, 0.5 * dy
    lx = (hx, -hx, -hx, hx)
    ly = (hy, hy, -hy, -hy)
    for k in range(4):
        out[k, 0] = cx + c * lx[k] - s * ly[k]
        out[k, 1] = cy + s * lx[k] + c * ly[k]
    return out


@numba.njit(cache=True)
def _clip(poly: np.ndarray, n: int, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> int:
    """Sutherland-Hodgman: keep the part of ``poly[:n]`` left of edge a->b."""
    m = 0
    ex, ey = b[0] - a[0], b[1] - a[1]
    for i in range(n):
        p = poly[i]
        q = poly[(i + 1) % n]
        sp = ex * (p[1] - a[1]) - ey * (p[0] - a[0])
        sq = ex * (q[1] - a[1]) - ey * (q[0] - a[0])
        if sp >= 0:
            out[m, 0] = p[0]
            out[m, 1] = p[1]
            m += 1
        if (sp >= 0) != (sq >= 0):
            t = sp / (sp - sq)
            out[m, 0] = p[0] + t * (q[0] - p[0])
            out[m, 1] = p[1] + t * (q[1] - p[1])
            m += 1
    return m


@numba.njit(cache=True)
def _area(poly: np.ndarray, n: int) -> float:
    s = 0.0
    for i in range(n):
        j = (i + 1) % n
        s += poly[i, 0] * poly[j, 1] - poly[j, 0] * poly[i, 1]
    return 0.5 * abs(s)


@numba.njit(cache=True)
def _inter_area(ca: np.ndarray, cb: np.ndarray) -> float:
    buf0 = np.empty((16, 2))
    buf1 = np.empty((16, 2))
    buf0[:4] = ca
    n = 4
    for k in range(4):
        n = _clip(buf0, n, cb[k], cb[(k + 1) % 4], buf1)
        if n < 3:
            return 0.0
        buf0[:n] = buf1[:n]
    return _area(buf0, n)


@numba.njit(cache=True)
def bev_intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise BEV intersection areas of boxes ``a`` (N, 5) and ``b`` (M, 5)."""
    n, m = a.shape[0], b.shape[0]
    out = np.zeros((n, m))
    if n == 0 or m == 0:
        return out
    ra = 0.5 * np.sqrt(a[:, 2] ** 2 + a[:, 3] ** 2)
    rb = 0.5 * np.sqrt(b[:, 2] ** 2 + b[:, 3] ** 2)
    cbs = np.empty((m, 4, 2))
    for j in range(m):
        cbs[j] = _corners(b[j, 0], b[j, 1], b[j, 2], b[j, 3], b[j, 4])
    for i in range(n):
        ca = _corners(a[i, 0], a[i, 1], a[i, 2], a[i, 3], a[i, 4])
        for j in range(m):
            d2 = (a[i, 0] - b[j, 0]) ** 2 + (a[i, 1] - b[j, 1]) ** 2
            if d2 >= (ra[i] + rb[j]) ** 2:
                continue
            out[i, j] = _inter_area(ca, cbs[j])
    return out


def _as2d(x: np.ndarray, width: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).reshape(-1, width)
    return np.ascontiguousarray(x)


def bev_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise rotated BEV IoU; ``a``/``b`` are (N, 5) ``(x, y, dx, dy, yaw)``."""
    a, b = _as2d(a, 5), _as2d(b, 5)
    inter = bev_intersection(a, b)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def iou_3d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise 3D IoU = BEV overlap x height overlap / union volume; boxes (N, 7)."""
    a, b = _as2d(a, 7), _as2d(b, 7)
    inter = bev_intersection(a[:, [0, 1, 3, 4, 6]], b[:, [0, 1, 3, 4, 6]])
    top = np.minimum((a[:, 2] + a[:, 5])[:, None], (b[:, 2] + b[:, 5])[None, :])
    bot = np.maximum(a[:, 2][:, None], b[:, 2][None, :])
    inter = inter * np.clip(top - bot, 0.0, None)
    vol_a = a[:, 3] * a[:, 4] * a[:, 5]
    vol_b = b[:, 3] * b[:, 4] * b[:, 5]
    union = vol_a[:, None] + vol_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def bev_of(boxes: np.ndarray) -> np.ndarray:
    """(N, 7) LiDAR boxes -> (N, 5) BEV boxes."""
    return _as2d(boxes, 7)[:, [0, 1, 3, 4, 6]]
