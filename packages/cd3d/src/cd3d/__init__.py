"""cd3d: 2D and 3D change detection from bitemporal orthophotos (3DCD)."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["ChangeDetector", "__version__", "create_model", "list_models", "register_model"]


def __getattr__(name: str) -> Any:
    """Import the model seam (torch, smp) on first use, so ``cd3d --help`` starts fast."""
    if name in __all__ and name != "__version__":
        return getattr(importlib.import_module(".models", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
