"""Running things: trainer configs (``config``), checkpoints and finished runs, grid extraction, inference, the demo."""
