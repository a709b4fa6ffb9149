"""Point-file reading with clear errors (no torch / mmdet3d import)."""

from __future__ import annotations

import os
import warnings

import numpy as np


def read_points(path: str, num_feats: int, nan: str = "drop") -> np.ndarray:
    """Read a float32 ``.bin`` point file with clear errors for bad frames."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"point file referenced by the info pkl is missing: {path}")
    raw = np.fromfile(path, dtype=np.float32)
    if raw.size == 0:
        raise ValueError(f"{path}: empty point cloud")
    if raw.size % num_feats != 0:
        raise ValueError(
            f"{path}: {raw.size} floats is not a multiple of the declared point dimension "
            f"{num_feats} (wrong load_dim / num_pts_feats for this file?)"
        )
    pts = raw.reshape(-1, num_feats)
    bad = ~np.isfinite(pts[:, :3]).all(1)
    if bad.any():
        if nan == "raise":
            raise ValueError(f"{path}: {int(bad.sum())} points with NaN/inf coordinates")
        warnings.warn(f"{path}: dropping {int(bad.sum())} NaN/inf points", stacklevel=2)
        pts = pts[~bad]
        if len(pts) == 0:
            raise ValueError(f"{path}: no finite points left")
    return pts
