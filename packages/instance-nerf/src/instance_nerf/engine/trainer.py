"""nerfstudio Trainer that works offline and loads checkpoints with ``weights_only=True``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from nerfstudio.engine.trainer import Trainer, TrainerConfig
from nerfstudio.utils.rich_utils import CONSOLE

from instance_nerf.models.offline import latest_checkpoint, load_checkpoint, offline_lpips


class WeightsOnlyTrainer(Trainer):
    """Same loop as nerfstudio's Trainer; setup builds LPIPS offline, resume uses weights_only."""

    def setup(self, test_mode: Literal["test", "val", "inference"] = "val") -> None:
        with offline_lpips():
            super().setup(test_mode=test_mode)

    def _load_checkpoint(self) -> None:
        path = None
        if self.config.load_dir is not None:
            if self.config.load_step is None:
                path = latest_checkpoint(self.config.load_dir)
            else:
                path = self.config.load_dir / f"step-{self.config.load_step:09d}.ckpt"
        elif self.config.load_checkpoint is not None:
            path = self.config.load_checkpoint
        if path is None:
            CONSOLE.print("No checkpoint to resume from; training from scratch.")
            return
        state = load_checkpoint(path)
        self._start_step = state["step"] + 1
        self.pipeline.load_pipeline(state["pipeline"], state["step"])
        self.optimizers.load_optimizers(state["optimizers"])
        if "schedulers" in state and self.config.load_scheduler:
            self.optimizers.load_schedulers(state["schedulers"])
        self.grad_scaler.load_state_dict(state["scalers"])
        CONSOLE.print(f"Resumed from {path} (step {state['step']})")


@dataclass
class WeightsOnlyTrainerConfig(TrainerConfig):
    """TrainerConfig whose target is :class:`WeightsOnlyTrainer`."""

    _target: type = field(default_factory=lambda: WeightsOnlyTrainer)
