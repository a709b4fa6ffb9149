"""bus-classify: breast-ultrasound lump classification (small CNN vs Swin via timm),
calibration and threshold tuning, Grad-CAM, and zero-shot vision-language models."""

from bus_classify.models import cnn as _cnn  # noqa: F401  (registers "bus_cnn_small" with timm)

__version__ = "0.1.0"
