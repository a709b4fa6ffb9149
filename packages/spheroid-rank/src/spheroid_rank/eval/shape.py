"""Shape helpers shared by single-spheroid and multi-object measurement."""

from __future__ import annotations

import numpy as np
from skimage import transform


def feret_min(mask: np.ndarray) -> float:
    """Minimum caliper width of a binary mask (rotating calipers over the hull edges)."""
    pts = np.argwhere(mask).astype(np.float64)
    if len(pts) < 3:
        return float(len(pts) > 0)
    # pixel corners make the width of a one-pixel-wide object 1, not 0
    offs = np.array([[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]])
    corners = (pts[:, None, :] + offs[None]).reshape(-1, 2)
    from scipy.spatial import ConvexHull

    hull = corners[ConvexHull(corners).vertices]
    edges = np.roll(hull, -1, 0) - hull
    normals = np.stack([-edges[:, 1], edges[:, 0]], 1)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    proj = hull @ normals.T
    return float((proj.max(0) - proj.min(0)).min())


def work_image(img: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``img`` as float32, downscaled so its longer side is at most ``max_side``; and the scale."""
    scale = min(1.0, max_side / max(img.shape))
    if scale < 1.0:
        img = transform.rescale(img, scale, anti_aliasing=True, preserve_range=True)
    return img.astype(np.float32), scale
