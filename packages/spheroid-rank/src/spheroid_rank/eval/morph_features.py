"""Morphology measures as a per-image feature vector (for the morphology-only ranking)."""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURES = [
    "log_area",
    "circularity",
    "solidity",
    "feret_ratio",
    "mean_intensity",
    "std_intensity",
    "debris_fraction",
]


def morphology_features(morph: pd.DataFrame) -> np.ndarray:
    """(N, 7) features: log area, circularity, solidity, Feret min/max, intensity, debris."""
    f = pd.DataFrame(
        {
            "log_area": np.log1p(morph["area"]),
            "circularity": morph["circularity"].clip(0, 1.5),
            "solidity": morph["solidity"],
            "feret_ratio": morph["feret_min"] / morph["feret_max"].replace(0, np.nan),
            "mean_intensity": morph["mean_intensity"],
            "std_intensity": morph["std_intensity"],
            "debris_fraction": morph["debris_fraction"],
        }
    )
    return f.fillna(0.0).to_numpy(np.float32)
