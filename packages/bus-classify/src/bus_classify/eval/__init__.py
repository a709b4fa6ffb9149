"""Evaluation seam: scikit-learn metrics and ECE, temperature scaling and thresholds, the
`eval`/`predict` file reports and plots, Grad-CAM, and zero-shot VLMs."""
