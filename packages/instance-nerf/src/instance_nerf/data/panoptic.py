"""The panoptic folder format shared by Mask2Former and the noise simulator.

``<stem>.png``: uint16 segment ids, 0 = void. ``segments.json``: {stem: [{id, class_id, is_background, score}]}.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from instance_nerf.data.io import InstanceNerfError, atomic_path, read_json, write_json

SEGMENTS_JSON = "segments.json"


def save_segment_map(path: Path, seg: np.ndarray) -> None:
    """Write segment ids (H, W) as a 16-bit PNG, atomically."""
    if seg.min(initial=0) < 0 or seg.max(initial=0) > 65535:
        raise InstanceNerfError(f"{path}: segment ids must lie in 0..65535")
    with atomic_path(path) as tmp:
        Image.fromarray(seg.astype(np.uint16)).save(tmp, format="PNG")


def write_panoptic(folder: Path, views: dict[str, tuple[np.ndarray, list[dict]]]) -> Path:
    """Write every view's segment map and one ``segments.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for stem, (seg, _) in views.items():
        save_segment_map(folder / f"{stem}.png", seg)
    write_json(folder / SEGMENTS_JSON, {stem: segs for stem, (_, segs) in views.items()}, indent=1)
    return folder


def read_panoptic(
    folder: Path, stems: Sequence[str], sizes: Sequence[tuple[int, int]] | None = None
) -> dict[str, tuple[np.ndarray, list[dict]]]:
    """Read the views ``stems`` (each checked for presence and, with ``sizes`` (W, H), size)."""
    folder = Path(folder)
    meta = read_json(folder / SEGMENTS_JSON)
    missing = [s for s in stems if s not in meta or not (folder / f"{s}.png").is_file()]
    if missing:
        raise InstanceNerfError(
            f"{folder}: {len(missing)} of {len(stems)} views have no panoptic mask (first: {missing[0]})"
        )
    out = {}
    for i, stem in enumerate(stems):
        path = folder / f"{stem}.png"
        with Image.open(path) as im:
            seg = np.array(im).astype(np.int64)
        if sizes is not None and seg.shape[::-1] != tuple(sizes[i]):
            raise InstanceNerfError(
                f"{path}: panoptic mask is {seg.shape[1]}x{seg.shape[0]}, the image is {sizes[i][0]}x{sizes[i][1]}"
            )
        out[stem] = (seg, list(meta[stem]))
    return out
