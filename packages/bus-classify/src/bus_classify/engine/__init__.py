"""Lightning training: module, data module, losses, checkpoints."""
