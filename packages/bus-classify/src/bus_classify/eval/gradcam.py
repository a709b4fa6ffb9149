"""Grad-CAM (pytorch-grad-cam): overlays, and how much of the map falls inside BUSI lesion masks."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.image import show_cam_on_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from scipy.ndimage import binary_erosion

from bus_classify.data.io import BusClassifyError, atomic_path
from bus_classify.data.parula import apply_parula
from bus_classify.data.sources import HF_SEP, positive_classes, read_mask, read_sample
from bus_classify.data.split import read_csv
from bus_classify.data.transforms import resize_op
from bus_classify.engine.checkpoint import eval_transform, load_classifier
from bus_classify.models.factory import gradcam_target_layer, reshape_transform_for

log = logging.getLogger(__name__)


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
    tf = eval_transform(hp)
    resize = resize_op(size, hp.get("resize", "stretch"))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    imgs = [read_sample(r) for r in refs]
    batch = torch.stack([tf(im) for im in imgs])
    maps = gradcam_maps(model, batch, names.index(target))
    paths = []
    for ref, im, cam in zip(refs, imgs, maps):
        shown = apply_parula(im) if parula else im
        rgb = np.asarray(resize(shown), np.float32) / 255.0
        overlay = show_cam_on_image(rgb, cam, use_rgb=True)
        panels = [(rgb * 255).astype(np.uint8), overlay]
        mask = read_mask(ref, im.size) if HF_SEP not in ref else None
        if mask is not None:  # outline the lesion mask on the overlay
            m = np.asarray(resize(mask)) > 127
            edge = m & ~binary_erosion(m, iterations=max(1, size // 128))
            panels[1] = panels[1].copy()
            panels[1][edge] = (255, 255, 255)
        panel = np.concatenate(panels, axis=1)
        stem = Path(ref.replace("::", "_")).stem.replace(" ", "_")
        path = out / f"{stem}_gradcam.png"
        with atomic_path(path) as tmp:
            Image.fromarray(panel).resize((panel.shape[1] * 2, panel.shape[0] * 2)).save(tmp)
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


def cam_localization(
    model: torch.nn.Module, hp: dict, rows: list[dict], device: str = "cpu", batch_size: int = 16
) -> dict | None:
    """Grad-CAM of the positive class vs the lesion masks of the positive ``rows``.

    Returns ``None`` when no row has a mask (not a BUSI-layout folder). Otherwise: the mean
    fraction of CAM mass inside the mask (``cam_mass_in_mask``), the pointing-game hit rate (the
    CAM maximum lies inside the mask), the mean mask area fraction (what a uniform map scores),
    and the files skipped because their mask was missing.
    """
    names = list(hp["class_names"])
    pos = positive_classes(names)
    tf = eval_transform(hp)
    resize = resize_op(hp["img_size"], hp.get("resize", "stretch"))
    items, missing = [], []
    for r in rows:
        if r["label"] not in pos or HF_SEP in r["path"]:
            continue
        img = read_sample(r["path"])
        mask = read_mask(r["path"], img.size)
        if mask is None:
            missing.append(r["path"])
            continue
        m = np.asarray(resize(mask)) > 127
        if m.any():
            items.append((tf(img), m, int(r["label"])))
    if not items:
        return None
    if missing:
        log.warning(
            "Grad-CAM localisation: %d positive image(s) without a mask skipped, e.g. %s",
            len(missing),
            missing[0],
        )
    model = model.to(device).eval()
    mass, hits, area = [], [], []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        x = torch.stack([c[0] for c in chunk]).to(device)
        # binary / malignant tasks explain the positive class; 3class explains the true class
        target = pos[0] if len(pos) == 1 else None
        for cls in sorted({target if target is not None else c[2] for c in chunk}):
            sel = [i for i, c in enumerate(chunk) if target is not None or c[2] == cls]
            maps = gradcam_maps(model, x[sel], cls)
            for i, cam in zip(sel, maps):
                m = chunk[i][1]
                total = float(cam.sum())
                mass.append(float(cam[m].sum()) / total if total > 0 else 0.0)
                hits.append(bool(m.flat[int(np.argmax(cam))]))
                area.append(float(m.mean()))
    return {
        "n": len(mass),
        "cam_mass_in_mask": float(np.mean(mass)),
        "pointing_game": float(np.mean(hits)),
        "mask_area_fraction": float(np.mean(area)),
        "skipped_without_mask": len(missing),
    }
