"""Change datasets: 3DCD layouts (orthophotos, a 2D mask and a 3D height map) and the 2D-only A/B/label
layout (see :mod:`cd3d.data.pairs`)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .io import DataError, check_height_3d, check_image, check_mask_2d, read_raster
from .pairs import is_pair_root, list_pairs

#: folder names per layout: before, after, 2D map, 3D map
LAYOUTS: dict[str, tuple[str, str, str, str]] = {
    "3dcd": ("2010", "2017", "2D", "3D"),
    "t1t2": ("t1", "t2", "2dcd", "3dcd"),
}
SPLITS = ("train", "val", "test")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TileFiles:
    """The four files of one tile."""

    name: str
    before: Path
    after: Path
    mask: Path
    height: Path | None  # None in the 2D-only layout


def detect_layout(split_dir: Path) -> str:
    """Return the layout name whose four folders exist in ``split_dir``."""
    for name, folders in LAYOUTS.items():
        if all((split_dir / f).is_dir() for f in folders):
            return name
    expected = " or ".join("/".join(f) for f in LAYOUTS.values())
    raise DataError(f"{split_dir}: missing split folders; expected sub-folders {expected}")


def resolve_layout(root: str | Path, split: str, layout: str = "auto") -> str:
    """``layout``, or the one found under ``root`` (``ab`` for A/B/label, else a 3DCD layout)."""
    if layout != "auto":
        return layout
    if is_pair_root(root, split):
        return "ab"
    split_dir = Path(root) / split
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: split folder not found")
    return detect_layout(split_dir)


def list_tiles(
    root: str | Path, split: str, layout: str = "auto", split_seed: int = 0
) -> tuple[list[TileFiles], list[str]]:
    """List the tiles of ``root/split``; return (complete tiles, problems for incomplete ones)."""
    layout = resolve_layout(root, split, layout)
    if layout == "ab":
        pairs, problems = list_pairs(root, split, split_seed)
        return [TileFiles(n, a, b, m, None) for n, a, b, m in pairs], problems
    split_dir = Path(root) / split
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: split folder not found")
    if layout == "auto":
        layout = detect_layout(split_dir)
    if layout not in LAYOUTS:
        raise DataError(f"unknown layout {layout!r}; choose from {sorted(LAYOUTS)}, 'ab' or 'auto'")
    folders = [split_dir / f for f in LAYOUTS[layout]]
    for f in folders:
        if not f.is_dir():
            raise DataError(f"{f}: folder not found (layout {layout})")
    names = [
        sorted(p.name for p in f.iterdir() if p.suffix.lower() in (".tif", ".tiff"))
        for f in folders
    ]
    every = sorted(set().union(*map(set, names)))
    if not every:
        raise DataError(f"{split_dir}: split is empty (no .tif files in {folders[0].name}/)")
    tiles, problems = [], []
    for n in every:
        missing = [f.name for f, ns in zip(folders, names) if n not in ns]
        if missing:
            problems.append(f"{n}: missing in {', '.join(missing)}")
        else:
            tiles.append(TileFiles(Path(n).stem, *(f / n for f in folders)))
    return tiles, problems


def _rgb(arr: np.ndarray) -> np.ndarray:
    return arr[:3] if arr.ndim == 3 and arr.shape[0] == 4 else arr  # drop a PNG alpha band


def load_tile(t: TileFiles) -> dict[str, np.ndarray]:
    """Read and check one tile; raise DataError naming the offending file."""
    b, _ = read_raster(t.before)
    a, _ = read_raster(t.after)
    m, _ = read_raster(t.mask)
    before, after = check_image(_rgb(b), t.before), check_image(_rgb(a), t.after)
    if before.shape != after.shape:
        raise DataError(
            f"{t.after}: shape {after.shape[1:]} differs from {t.before} {before.shape[1:]}"
        )
    mask = check_mask_2d(m, t.mask)
    if mask.shape != before.shape[1:]:
        raise DataError(
            f"{t.mask}: 2D map shape {mask.shape} differs from image {before.shape[1:]}"
        )
    out = {"before": before, "after": after, "mask": mask}
    if t.height is not None:
        h, hp = read_raster(t.height)
        out["height"] = check_height_3d(h, t.height, hp.get("nodata"))
    return out


class ChangeDataset(Dataset):
    """Tiles of one split of a 3DCD-layout (``2010/2017/2D/3D``), ``t1/t2/2dcd/3dcd`` or 2D-only
    ``A/B/label`` dataset (``layout="ab"``; then items have no ``height`` and ``split_seed`` seeds
    the split when the dataset has neither split folders nor ``list/``).

    Every tile is read once at construction; tiles that are unreadable or fail the checks are
    dropped and reported in a single warning that lists them (``self.skipped``). With
    ``strict=True`` the first problem raises instead. Items are dicts of tensors: ``before``,
    ``after`` (3×H×W float in [0, 1]), ``mask`` (H×W int64), ``height`` (h×w float32, metres).
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        layout: str = "auto",
        transform: Callable[[dict], dict] | None = None,
        strict: bool = False,
        cache: bool = True,
        split_seed: int = 0,
    ) -> None:
        tiles, problems = list_tiles(root, split, layout, split_seed)
        self.transform = transform
        self.tiles: list[TileFiles] = []
        self._cache: list[dict[str, np.ndarray]] = []
        for t in tiles:
            try:
                sample = load_tile(t)
            except DataError as exc:
                if strict:
                    raise
                problems.append(str(exc))
                continue
            self.tiles.append(t)
            if cache:
                self._cache.append(sample)
        self.skipped = problems
        if problems:
            if strict:
                raise DataError(f"{Path(root) / split}: " + "; ".join(problems))
            log.warning(
                "%s: skipped %d tile(s): %s", Path(root) / split, len(problems), "; ".join(problems)
            )
            warnings.warn(
                f"{Path(root) / split}: skipped {len(problems)} tile(s): " + "; ".join(problems),
                stacklevel=2,
            )
        if not self.tiles:
            raise DataError(f"{Path(root) / split}: no readable tiles")

    @property
    def has_3d(self) -> bool:
        """Whether items carry a ``height`` target (False for the 2D-only A/B/label layout)."""
        return self.tiles[0].height is not None

    def __len__(self) -> int:
        return len(self.tiles)

    def raw(self, i: int) -> dict[str, np.ndarray]:
        """The checked arrays of tile ``i`` without transforms."""
        return self._cache[i] if self._cache else load_tile(self.tiles[i])

    def __getitem__(self, i: int) -> dict:
        s = self.raw(i)
        item = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in s.items()}
        if self.transform is not None:
            item = self.transform(item)
        item["name"] = self.tiles[i].name
        return item
