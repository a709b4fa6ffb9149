"""Evaluation: rotated BEV/3D IoU, the CPU KITTI AP, GT extraction per dataset format,
``CarAPMetric`` (mmengine METRICS) and BEV plots."""
