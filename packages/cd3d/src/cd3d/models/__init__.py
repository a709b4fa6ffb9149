"""Networks and the registry users extend with :func:`register_model`."""

from . import attention, siam_unet, tiny  # noqa: F401  (registration side effects)
from .registry import create_model, list_models, register_model
from .wrapper import ChangeDetector

__all__ = ["ChangeDetector", "create_model", "list_models", "register_model"]
