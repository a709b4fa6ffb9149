"""Scoring: mIoU, panoptic quality and multi-view consistency, and the held-out-view evaluation of a run."""
