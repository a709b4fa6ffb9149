"""Training seam: run configs (`config`), the LightningModule and DataModule, losses,
`train()`, the checkpoint save/load pair, in-memory batch inference (`infer`) and the demo."""
