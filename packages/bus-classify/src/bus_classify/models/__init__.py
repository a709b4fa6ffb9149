"""Networks: the report's small CNN (registered with timm) and the timm model factory."""

from bus_classify.models import cnn  # noqa: F401  (registers bus_cnn_small with timm)
from bus_classify.models.factory import create_model, gradcam_target_layer

__all__ = ["create_model", "gradcam_target_layer"]
