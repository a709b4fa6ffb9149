"""cd3d: 2D and 3D change detection from bitemporal orthophotos (3DCD)."""

from .models import ChangeDetector, create_model, list_models, register_model

__version__ = "0.1.0"
__all__ = ["ChangeDetector", "__version__", "create_model", "list_models", "register_model"]
