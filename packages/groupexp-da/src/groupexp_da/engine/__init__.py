"""Running things: config loading (``config``), checkpoints (``checkpoint``), batch inference
(``infer``), ST3D pseudo labels and rounds (``pseudo``, ``st3d``) and the demo (``demo``)."""
