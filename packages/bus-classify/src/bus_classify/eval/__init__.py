"""Metrics, calibration, plots, evaluation reports, Grad-CAM and zero-shot VLMs."""
