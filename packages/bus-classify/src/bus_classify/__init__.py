"""bus-classify: breast-ultrasound lump classification (small CNN vs Swin via timm),
calibration and threshold tuning, Grad-CAM, and zero-shot vision-language models."""

# Nothing heavy here: `bus-classify --help` must not import torch or timm. Importing
# `bus_classify.models` (done by everything that builds a model) registers "bus_cnn_small".

__version__ = "0.1.0"
