"""Mask refinement: an edge-aware guided filter per instance mask and the composite of the refined masks."""
