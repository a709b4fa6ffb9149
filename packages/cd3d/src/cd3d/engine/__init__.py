"""Training (Lightning), checkpoints and tiled georeferenced inference."""
