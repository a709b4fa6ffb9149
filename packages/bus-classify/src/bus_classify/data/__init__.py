"""Data seam: image readers and atomic writers (`io`), dataset layouts (`sources`), the
duplicate-aware split, transforms, PARULA and the synthetic generator."""

from bus_classify.data.io import BusClassifyError, ImageReadError, load_image
from bus_classify.data.sources import Sample, discover

__all__ = ["BusClassifyError", "ImageReadError", "Sample", "discover", "load_image"]
