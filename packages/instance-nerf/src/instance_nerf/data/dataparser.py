"""Dataparser for nerfstudio ``transforms.json`` scenes with per-view instance-id masks.

Layout (all paths relative to the scene folder)::

    transforms.json   fl_x, fl_y, cx, cy, w, h (or camera_angle_x), optional "aabb": [[x,y,z],[x,y,z]],
                      frames: [{file_path, transform_matrix (OpenGL c2w),
                                optional instance_file_path, optional split: "train" | "test"}]
    instances/<image stem>.png   instance ids (8- or 16-bit single channel); id 0 is background;
                                 the ignore value (255 for 8-bit, 65535 for 16-bit, or
                                 "instance_ignore_value" in transforms.json) becomes -1
    instances.json    optional: {"num_instances": L, "classes": [...], "instances": [{"id", "class_id"}]}

Frames whose image is missing are skipped with one warning; frames without a mask train colour only.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.data.dataparsers.base_dataparser import (
    DataParser,
    DataParserConfig,
    DataparserOutputs,
)
from nerfstudio.data.scene_box import SceneBox
from PIL import Image

from instance_nerf.data.io import InstanceNerfError

IMAGE_SUFFIXES = ("", ".png", ".jpg", ".jpeg", ".PNG", ".JPG")


def _resolve_image(root: Path, rel: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        path = root / f"{rel}{suffix}"
        if path.is_file():
            return path
    return None


def read_instances_json(path: Path) -> dict:
    """Parse ``instances.json`` into {"num_instances", "classes", "id_to_class"}."""
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InstanceNerfError(f"{path}: invalid JSON ({exc})") from exc
    id_to_class = {0: 0}
    for inst in meta.get("instances", []):
        id_to_class[int(inst["id"])] = int(inst.get("class_id", 1))
    num = int(meta.get("num_instances", max(id_to_class) + 1))
    if max(id_to_class) >= num:
        raise InstanceNerfError(f"{path}: instance id {max(id_to_class)} >= num_instances {num}")
    return {"num_instances": num, "classes": meta.get("classes"), "id_to_class": id_to_class}


@dataclass
class InstanceDataParserConfig(DataParserConfig):
    """Config for :class:`InstanceDataParser`."""

    _target: type = field(default_factory=lambda: InstanceDataParser)
    data: Path = Path()
    """Scene folder (or its transforms.json)."""
    scale_factor: float = 1.0
    """Multiply camera positions and the AABB by this."""
    scene_scale: float = 1.0
    """Half side of the scene box when transforms.json has no "aabb"."""
    eval_interval: int = 8
    """Without "split" keys, every eval_interval-th frame is held out."""
    instance_dir: str = "instances"
    """Folder with the per-view instance-id PNGs. Other than the default, it overrides the frames'
    ``instance_file_path`` (so matched or refined masks can replace the ones a scene lists)."""
    instances_json: str = "instances.json"
    """Instance metadata (``num_instances``, classes) beside transforms.json, e.g. ``instances_matched.json``."""


class InstanceDataParser(DataParser):
    """Reads cameras, images and instance masks; no re-orientation (world frame = file frame)."""

    config: InstanceDataParserConfig

    def _generate_dataparser_outputs(self, split: str = "train") -> DataparserOutputs:
        data = Path(self.config.data)
        tpath = data if data.suffix == ".json" else data / "transforms.json"
        root = tpath.parent
        if not tpath.is_file():
            raise FileNotFoundError(f"{tpath}: transforms.json not found")
        meta = json.loads(tpath.read_text())
        frames = meta.get("frames", [])
        if not frames:
            raise InstanceNerfError(f"{tpath}: no frames (empty scene)")

        kept, missing = [], []
        for i, frame in enumerate(frames):
            img = _resolve_image(root, frame["file_path"])
            if img is None:
                missing.append(frame["file_path"])
            else:
                kept.append((i, frame, img))
        if missing:
            warnings.warn(
                f"{tpath}: {len(missing)} of {len(frames)} frames list an image that does not exist "
                f"(first: {missing[0]}); they are skipped",
                stacklevel=2,
            )
        if not kept:
            raise InstanceNerfError(f"{tpath}: none of the {len(frames)} listed images exist")

        has_split = any("split" in f for _, f, _ in kept)
        if has_split:
            want = "train" if split == "train" else "test"
            sel = [k for k in kept if k[1].get("split", "train") == want]
        else:
            test = {j for j in range(len(kept)) if j % self.config.eval_interval == 0}
            sel = [k for j, k in enumerate(kept) if (j in test) != (split == "train")]
        if not sel:
            raise InstanceNerfError(f"{tpath}: no frames for split '{split}'")

        inst_meta = {"num_instances": 0, "classes": None, "id_to_class": {0: 0}}
        if (root / self.config.instances_json).is_file():
            inst_meta = read_instances_json(root / self.config.instances_json)
        elif self.config.instances_json != "instances.json":
            raise InstanceNerfError(
                f"{root / self.config.instances_json}: instances json not found"
            )

        image_files, mask_files, poses, intr = [], [], [], []
        for _, frame, img in sel:
            image_files.append(img)
            rel = (
                frame.get("instance_file_path") if self.config.instance_dir == "instances" else None
            )
            mask = root / rel if rel else root / self.config.instance_dir / f"{img.stem}.png"
            mask_files.append(mask if mask.is_file() else None)
            poses.append(np.asarray(frame["transform_matrix"], dtype=np.float32))
            intr.append(self._intrinsics(meta, frame, img))
        self._check_mask_sizes(image_files, mask_files, intr)
        n_masked = sum(m is not None for m in mask_files)
        if 0 < n_masked < len(mask_files):
            warnings.warn(
                f"{tpath}: {len(mask_files) - n_masked} {split} frames have no instance mask; "
                "they train colour only",
                stacklevel=2,
            )

        c2w = torch.from_numpy(np.stack(poses))[:, :3, :4]
        c2w[:, :3, 3] *= self.config.scale_factor
        k = torch.tensor(intr, dtype=torch.float32)
        cameras = Cameras(
            camera_to_worlds=c2w,
            fx=k[:, 0:1],
            fy=k[:, 1:2],
            cx=k[:, 2:3],
            cy=k[:, 3:4],
            width=k[:, 4:5].int(),
            height=k[:, 5:6].int(),
            camera_type=CameraType.PERSPECTIVE,
        )
        if "aabb" in meta:
            aabb = torch.tensor(meta["aabb"], dtype=torch.float32) * self.config.scale_factor
        else:
            s = self.config.scene_scale
            aabb = torch.tensor([[-s, -s, -s], [s, s, s]], dtype=torch.float32)
        ignore = meta.get("instance_ignore_value")
        return DataparserOutputs(
            image_filenames=image_files,
            cameras=cameras,
            scene_box=SceneBox(aabb=aabb),
            dataparser_scale=self.config.scale_factor,
            metadata={
                "instance_filenames": mask_files,
                "instance_ignore_value": ignore,
                "num_instances": inst_meta["num_instances"],
                "id_to_class": inst_meta["id_to_class"],
                "class_names": inst_meta["classes"],
            },
        )

    @staticmethod
    def _intrinsics(meta: dict, frame: dict, img: Path) -> list[float]:
        get = lambda key: frame.get(key, meta.get(key))  # noqa: E731
        w, h = get("w"), get("h")
        if w is None or h is None:
            with Image.open(img) as im:
                w, h = im.size
        if get("fl_x") is not None:
            fx = float(get("fl_x"))
            fy = float(get("fl_y") or fx)
        elif get("camera_angle_x") is not None:
            fx = fy = 0.5 * w / math.tan(0.5 * float(get("camera_angle_x")))
        else:
            raise InstanceNerfError(
                f"{img}: no focal length (fl_x or camera_angle_x) in transforms.json"
            )
        cx = float(get("cx") if get("cx") is not None else w / 2)
        cy = float(get("cy") if get("cy") is not None else h / 2)
        return [fx, fy, cx, cy, float(w), float(h)]

    @staticmethod
    def _check_mask_sizes(
        images: list[Path], masks: list[Path | None], intr: list[list[float]]
    ) -> None:
        for img, mask, k in zip(images, masks, intr):
            if mask is None:
                continue
            with Image.open(mask) as m:
                size = m.size
            if size != (int(k[4]), int(k[5])):
                raise InstanceNerfError(
                    f"{mask}: instance mask is {size[0]}x{size[1]} but image {img.name} is "
                    f"{int(k[4])}x{int(k[5])}"
                )
