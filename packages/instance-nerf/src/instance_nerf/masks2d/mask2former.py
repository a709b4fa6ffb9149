"""Mask2Former panoptic segmentation through transformers, from a local folder only (no network, ever)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from instance_nerf.data.io import InstanceNerfError
from instance_nerf.masks2d.classmap import ClassMap, load_class_map

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")


def _offline_transformers():
    os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is imported: never reach the hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import transformers

    return transformers


def check_model_dir(model_dir: str | Path) -> dict:
    """The folder's ``config.json`` if it holds a Mask2Former with weights and a preprocessor config."""
    d = Path(model_dir)
    if not d.is_dir():
        raise InstanceNerfError(
            f"{d}: Mask2Former folder not found (a local folder is required; nothing is downloaded)"
        )
    cfg_path = d / "config.json"
    if not cfg_path.is_file():
        raise InstanceNerfError(f"{d}: no config.json (not a saved transformers model)")
    try:
        cfg = json.loads(cfg_path.read_text())
    except json.JSONDecodeError:
        raise InstanceNerfError(f"{cfg_path}: not valid JSON") from None
    if cfg.get("model_type") != "mask2former":
        raise InstanceNerfError(
            f"{cfg_path}: model_type is {cfg.get('model_type')!r}, not a Mask2Former"
        )
    if not any((d / f).is_file() for f in WEIGHT_FILES):
        raise InstanceNerfError(f"{d}: no weights ({' or '.join(WEIGHT_FILES[:2])})")
    if not (d / "preprocessor_config.json").is_file():
        raise InstanceNerfError(
            f"{d}: no preprocessor_config.json (save the image processor beside the model)"
        )
    return cfg


def panoptic_merge(
    class_logits: torch.Tensor,
    mask_logits: torch.Tensor,
    size: tuple[int, int],
    threshold: float = 0.5,
    mask_threshold: float = 0.5,
    overlap: float = 0.8,
    fuse: set[int] = frozenset(),
) -> tuple[torch.Tensor, list[dict]]:
    """Our panoptic merge of one image's queries ((Q, L+1) logits, (Q, h, w) mask logits) → (seg (H, W), segments).

    Queries above ``threshold`` (not the no-object class) compete per pixel by score × mask probability;
    a query keeps its pixels if they are > ``overlap`` of its own mask (prob·score ≥ ``mask_threshold``).
    Labels in ``fuse`` share one segment. Segment ids start at 1; 0 = no segment.
    """
    num_labels = class_logits.shape[-1] - 1
    masks = F.interpolate(mask_logits[None], size=(384, 384), mode="bilinear", align_corners=False)[
        0
    ]
    scores, labels = class_logits.softmax(-1).max(-1)
    keep = (labels != num_labels) & (scores > threshold)
    seg = torch.zeros(size, dtype=torch.int32)
    if not keep.any():
        return seg, []
    probs = F.interpolate(
        masks[keep].sigmoid()[None], size=size, mode="bilinear", align_corners=False
    )[0]
    scores, labels = scores[keep], labels[keep]
    probs = probs * scores[:, None, None]
    owner = probs.argmax(0)
    segments, fused, next_id = [], {}, 0
    for k in range(len(labels)):
        mine = owner == k
        area, full = int(mine.sum()), int((probs[k] >= mask_threshold).sum())
        if area == 0 or full == 0 or not area / full > overlap:
            continue
        label = int(labels[k])
        if label in fuse and label in fused:
            sid = fused[label]
        else:
            next_id += 1
            sid = next_id
            if label in fuse:
                fused[label] = sid
        seg[mine] = sid
        segments.append(
            {
                "id": sid,
                "label_id": label,
                "was_fused": label in fuse,
                "score": round(float(scores[k]), 6),
            }
        )
    return seg, segments


class Mask2FormerSegmenter:
    """Per image: ``(seg (H, W) int32 with 0 = void, [{id, label, class_id, is_background, score}])``."""

    def __init__(
        self,
        model_dir: str | Path,
        device: str = "cpu",
        threshold: float = 0.5,
        mask_threshold: float = 0.5,
        overlap: float = 0.8,
        class_map: ClassMap | str = "coco_to_nyu40",
        resize: bool = True,
    ):
        cfg = check_model_dir(model_dir)
        tf = _offline_transformers()
        self.model_dir = Path(model_dir)
        try:
            self.processor = tf.AutoImageProcessor.from_pretrained(
                str(model_dir), local_files_only=True
            )
            self.model = tf.Mask2FormerForUniversalSegmentation.from_pretrained(
                str(model_dir), local_files_only=True
            )
        except (OSError, ValueError) as exc:
            raise InstanceNerfError(
                f"{model_dir}: cannot load the Mask2Former ({str(exc).splitlines()[0]})"
            ) from None
        self.model.to(device).eval()
        self.device = device
        self.threshold, self.mask_threshold, self.overlap, self.resize = (
            threshold,
            mask_threshold,
            overlap,
            resize,
        )
        self.class_map = (
            load_class_map(class_map) if isinstance(class_map, str | Path) else class_map
        )
        id2label = {
            int(k): v for k, v in (cfg.get("id2label") or self.model.config.id2label).items()
        }
        self.id2label = id2label
        self.table = self.class_map.model_table(id2label, str(model_dir))
        self.stuff = {i for i, (_, bg) in self.table.items() if bg}

    @torch.no_grad()
    def raw(self, image: np.ndarray):
        """The model's outputs for one (H, W, 3) uint8 image."""
        inputs = self.processor(images=image, return_tensors="pt", do_resize=self.resize)
        return self.model(pixel_values=inputs["pixel_values"].to(self.device))

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, list[dict]]:
        h, w = image.shape[:2]
        out = self.raw(image)
        res = self.processor.post_process_panoptic_segmentation(
            out,
            threshold=self.threshold,
            mask_threshold=self.mask_threshold,
            overlap_mask_area_threshold=self.overlap,
            label_ids_to_fuse=self.stuff,
            target_sizes=[(h, w)],
        )[0]
        seg = res["segmentation"].cpu().numpy().astype(np.int32)
        seg[seg < 0] = 0  # the processor marks "nothing passed" with −1
        records = []
        for s in res["segments_info"]:
            mapped = self.table.get(int(s["label_id"]))
            if mapped is None:  # a label outside the target classes: void
                seg[seg == s["id"]] = 0
                continue
            records.append(
                {
                    "id": int(s["id"]),
                    "label": self.id2label.get(int(s["label_id"]), str(s["label_id"])),
                    "class_id": int(mapped[0]),
                    "is_background": bool(mapped[1]),
                    "score": float(s["score"]),
                }
            )
        return seg, records


def tiny_mask2former(folder: str | Path, labels: list[str], seed: int = 0) -> Path:
    """Save a tiny random-weight Mask2Former (Swin backbone, 6 queries) and its image processor to ``folder``."""
    tf = _offline_transformers()
    torch.manual_seed(seed)
    swin = tf.SwinConfig(
        embed_dim=16,
        depths=[1] * 4,
        num_heads=[1] * 4,
        image_size=64,
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    cfg = tf.Mask2FormerConfig(
        backbone_config=swin,
        hidden_dim=32,
        feature_size=32,
        mask_feature_size=32,
        encoder_layers=1,
        decoder_layers=3,
        encoder_feedforward_dim=64,
        dim_feedforward=64,
        num_attention_heads=2,
        num_queries=6,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)},
    )
    model = tf.Mask2FormerForUniversalSegmentation(cfg)
    folder = Path(folder)
    model.save_pretrained(folder)
    tf.Mask2FormerImageProcessor(size={"height": 64, "width": 64}).save_pretrained(folder)
    return folder
