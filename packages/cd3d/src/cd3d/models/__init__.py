"""Model seam: the name registry (:func:`register_model`), the networks registered on import
(``siam_unet``, ``mtbit``, ``pixel_mlp``), D4 test-time augmentation and :class:`ChangeDetector`."""

from . import attention, siam_unet, tiny  # noqa: F401  (registration side effects)
from .registry import create_model, list_models, register_model
from .wrapper import ChangeDetector

__all__ = ["ChangeDetector", "create_model", "list_models", "register_model"]
