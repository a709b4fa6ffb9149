"""CascadePSP (Cheng et al., CVPR 2020) as a refiner, from weights the user already has on disk.

Uses the network and the global/local inference helpers of the optional PyPI package
``segmentation-refinement`` (``pip install 'instance-nerf[cascadepsp]'``), but never its ``Refiner`` class,
whose constructor downloads the weights when they are missing. Here the weights file ``<dir>/model``
must exist; it is read with ``weights_only=True``. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from instance_nerf.data.io import InstanceNerfError
from instance_nerf.models.offline import load_weights

_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)  # ImageNet statistics
_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


class CascadePSPRefiner:
    """``(image, binary mask) → soft mask in [0, 1]``; ``fast`` runs the global step only, ``size`` is L."""

    def __init__(
        self, model_dir: str | Path, device: str = "cpu", fast: bool = False, size: int = 900
    ):
        path = Path(model_dir) / "model"
        if not path.is_file():
            raise InstanceNerfError(
                f"{path}: CascadePSP weights not found (put the released weights file, named 'model', "
                "in the folder given to --cascadepsp-dir; nothing is downloaded)"
            )
        try:
            from segmentation_refinement.eval_helper import (
                process_high_res_im,
                process_im_single_pass,
            )
            from segmentation_refinement.models.psp.pspnet import RefinementModule
        except ImportError:
            raise InstanceNerfError(
                "--refiner cascadepsp needs the optional package segmentation-refinement "
                "(pip install 'instance-nerf[cascadepsp]')"
            ) from None
        state = load_weights(path, what="CascadePSP weights file")
        if not isinstance(state, dict):
            raise InstanceNerfError(f"{path}: not a CascadePSP weights file (not a state dict)")
        state = {k.removeprefix("module."): v for k, v in state.items()}  # saved from DataParallel
        net = RefinementModule()
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise InstanceNerfError(
                f"{path}: not a CascadePSP weights file ({str(exc).splitlines()[0]})"
            ) from None
        self.net = net.eval().to(device)
        self.device, self.size = device, size
        self._run = process_im_single_pass if fast else process_high_res_im

    @torch.no_grad()
    def __call__(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        img = torch.as_tensor(np.asarray(image, dtype=np.float32)[..., :3])
        if img.max() > 1.0:
            img = img / 255.0
        img = (img.permute(2, 0, 1)[None] - _MEAN) / _STD
        seg = torch.as_tensor(np.asarray(mask, dtype=np.float32) > 0.5).float()[None, None] * 2 - 1
        out = self._run(self.net, img.to(self.device), seg.to(self.device), self.size)
        return out[0, 0].clamp(0, 1).cpu().numpy().astype(np.float64)
