"""Shipped run configurations (YAML) and zero-shot prompts; loaded by :mod:`bus_classify.engine.config`."""
