"""Readers, sources, splitting, transforms and synthetic data."""

from bus_classify.data.io import ImageReadError, load_image
from bus_classify.data.sources import Sample, discover

__all__ = ["ImageReadError", "Sample", "discover", "load_image"]
