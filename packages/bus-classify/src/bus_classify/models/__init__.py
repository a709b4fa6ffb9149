"""Model seam: registers `bus_cnn_small` with timm and builds any timm model by name."""

from bus_classify.models import cnn  # noqa: F401  (registers bus_cnn_small with timm)
from bus_classify.models.factory import create_model, gradcam_target_layer

__all__ = ["create_model", "gradcam_target_layer"]
