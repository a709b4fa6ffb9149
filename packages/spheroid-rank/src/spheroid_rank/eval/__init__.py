"""Measuring: morphology, well scores, ranking statistics (Z', bootstrap CI, 4PL), linear
probe / kNN / supervised baseline, and the HTML report."""
