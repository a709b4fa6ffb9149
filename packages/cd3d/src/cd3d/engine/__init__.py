"""Engine seam: run configs, Lightning training, the checkpoint save/load pair, batch and tiled
georeferenced inference, and the demo; builds on data, models and eval."""
