"""Grad-CAM overlays (pytorch-grad-cam) for the CNN and Swin."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.image import show_cam_on_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from bus_classify.data.io import BusClassifyError
from bus_classify.data.parula import apply_parula
from bus_classify.data.sources import read_sample
from bus_classify.data.split import read_csv
from bus_classify.data.transforms import build_transform
from bus_classify.engine.checkpoint import load_classifier
from bus_classify.models.factory import gradcam_target_layer, reshape_transform_for


def gradcam_maps(model: torch.nn.Module, batch: torch.Tensor, target_class: int) -> np.ndarray:
    """Grad-CAM heat maps ``(N, H, W)`` in [0, 1] for ``target_class``."""
    layer = gradcam_target_layer(model)
    with GradCAM(
        model=model, target_layers=[layer], reshape_transform=reshape_transform_for(model)
    ) as cam:
        return cam(input_tensor=batch, targets=[ClassifierOutputTarget(target_class)] * len(batch))


def gradcam_overlays(
    checkpoint: str | Path, refs: list[str], out: str | Path, target: str = "lump"
) -> list[Path]:
    """Write ``<stem>_gradcam.png`` (image | overlay) for each image reference."""
    model, hp = load_classifier(checkpoint)
    names = list(hp["class_names"])
    if target not in names:
        raise BusClassifyError(
            f"Grad-CAM target {target!r} is not a class of {checkpoint}: {names}"
        )
    size, parula = hp["img_size"], hp.get("parula", False)
    tf = build_transform(size, train=False, parula=parula)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    imgs = [read_sample(r) for r in refs]
    batch = torch.stack([tf(im) for im in imgs])
    maps = gradcam_maps(model, batch, names.index(target))
    paths = []
    for ref, im, cam in zip(refs, imgs, maps):
        shown = apply_parula(im) if parula else im
        rgb = np.asarray(shown.resize((size, size)), np.float32) / 255.0
        overlay = show_cam_on_image(rgb, cam, use_rgb=True)
        panel = np.concatenate([(rgb * 255).astype(np.uint8), overlay], axis=1)
        stem = Path(ref.replace("::", "_")).stem.replace(" ", "_")
        path = out / f"{stem}_gradcam.png"
        Image.fromarray(panel).resize((panel.shape[1] * 2, panel.shape[0] * 2)).save(path)
        paths.append(path)
    return paths


def gradcam_from_refs_or_split(
    checkpoint: str | Path,
    out: str | Path,
    images: list[str] | None = None,
    split_csv: str | Path | None = None,
    n: int = 4,
    target: str = "lump",
) -> list[Path]:
    """Overlays for ``images`` plus ``n`` test images spread over ``split_csv``."""
    refs = list(images or [])
    if split_csv:
        rows = [r for r in read_csv(split_csv) if r["split"] == "test"]
        refs += [r["path"] for r in rows[:: max(1, len(rows) // n)][:n]]
    if not refs:
        raise BusClassifyError("gradcam: give --images FILE... or --split CSV")
    return gradcam_overlays(checkpoint, refs, out, target)
