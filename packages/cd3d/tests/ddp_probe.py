"""A Lightning callback for the DDP test: records, per rank, the sample names of every training batch
and the final validation metrics, in ``OUT/seen_rank{R}.json`` (test instrumentation, one file per rank)."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L


class SeenSamples(L.Callback):
    def __init__(self, out: str) -> None:
        self.out, self.batches = Path(out), []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batches.append([trainer.current_epoch, list(batch["name"])])

    def on_fit_end(self, trainer, pl_module) -> None:
        val = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        rec = {
            "rank": trainer.global_rank,
            "world": trainer.world_size,
            "batches": self.batches,
            "val": val,
        }
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / f"seen_rank{trainer.global_rank}.json").write_text(json.dumps(rec))
