"""Find labelled images in the three supported layouts.

* BUSI: ``ROOT/{benign,malignant,normal}/*.png``; segmentation masks (``*_mask.png``,
  ``*_mask_1.png``) beside the images are excluded.
* Split folders: ``ROOT/{train,val,test}/{lump,no_lump}/*`` (the report's layout).
* A local Hugging Face ``datasets`` export (``save_to_disk`` folder or parquet files) with an
  image column and a label column.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bus_classify.data.io import BusClassifyError, ImageReadError, is_image_file, load_image

log = logging.getLogger(__name__)

MASK_RE = re.compile(r"_mask(_\d+)?$", re.IGNORECASE)
BINARY_CLASSES = ["no_lump", "lump"]
THREE_CLASSES = ["benign", "malignant", "normal"]
MALIGNANT_CLASSES = ["non_malignant", "malignant"]
TASKS = ("binary", "3class", "malignant")
_NEG = {"normal", "no_lump", "nolump", "no-lump", "no lump", "clear", "negative", "healthy"}
_POS = {"lump", "benign", "malignant", "positive", "tumor", "tumour"}
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
HF_SEP = "::"


@dataclass(frozen=True)
class Sample:
    """One labelled image: ``ref`` is a file path or ``<hf dir>::<split>::<row>``."""

    ref: str
    label: int
    source_class: str
    split: str | None = None


def class_names(task: str) -> list[str]:
    """Class names in label-index order for ``binary`` or ``3class``."""
    if task == "binary":
        return list(BINARY_CLASSES)
    if task == "3class":
        return list(THREE_CLASSES)
    if task == "malignant":
        return list(MALIGNANT_CLASSES)
    raise BusClassifyError(f"unknown task {task!r}; use one of {TASKS}")


def positive_classes(class_names: list[str]) -> list[int]:
    """Indices of the positive group: ``lump`` (binary), ``benign`` + ``malignant`` (3 classes),
    ``malignant`` (the malignant task)."""
    pos = [i for i, c in enumerate(class_names) if c in ("lump", "benign", "malignant")]
    if not pos:
        raise BusClassifyError(f"no lump class among {class_names}")
    return pos


def class_index(name: str, task: str, where: str = "") -> int:
    """Map a folder or label name to the index of ``task``'s classes."""
    key = name.strip().lower().replace("-", "_")
    if task == "malignant":
        if key in THREE_CLASSES:
            return int(key == "malignant")
        raise BusClassifyError(
            f"{where}: class {name!r} is not one of {THREE_CLASSES} (the "
            "malignant task needs the BUSI benign/malignant/normal labels)"
        )
    if task == "3class":
        if key in THREE_CLASSES:
            return THREE_CLASSES.index(key)
        raise BusClassifyError(
            f"{where}: class {name!r} is not one of {THREE_CLASSES} (3-class task "
            "needs the BUSI benign/malignant/normal labels)"
        )
    if key in _NEG or key.replace("_", " ") in _NEG:
        return 0
    if key in _POS:
        return 1
    raise BusClassifyError(
        f"{where}: unknown class {name!r}; expected one of {sorted(_NEG | _POS)}"
    )


def is_mask(path: Path) -> bool:
    """True for BUSI segmentation masks such as ``benign (1)_mask.png``."""
    return bool(MASK_RE.search(path.stem))


def _images_in(folder: Path, stats: dict | None = None) -> tuple[list[Path], int]:
    files = sorted(p for p in folder.iterdir() if is_image_file(p))
    keep = [p for p in files if not is_mask(p)]
    stems = {p.stem for p in keep}
    for m in files:
        if is_mask(m) and MASK_RE.sub("", m.stem) not in stems:
            log.warning(
                "%s: mask without its image (%s), skipped", m, MASK_RE.sub("", m.stem) + m.suffix
            )
            if stats is not None:
                stats.setdefault("orphan_masks", []).append(str(m))
    return keep, len(files) - len(keep)


def _masks_in(folder: Path) -> dict[str, list[Path]]:
    """BUSI lesion masks in ``folder`` by the stem of their image (one directory listing)."""
    found: dict[str, list[Path]] = {}
    if folder.is_dir():
        for p in sorted(folder.iterdir()):
            if is_mask(p):
                found.setdefault(MASK_RE.sub("", p.stem), []).append(p)
    return found


def mask_paths(image: str | Path) -> list[Path]:
    """BUSI lesion masks of ``image``: ``<stem>_mask.png``, ``<stem>_mask_1.png``, ..."""
    image = Path(image)
    return _masks_in(image.parent).get(image.stem, [])


def mask_index(images: Iterable[str]) -> dict[str, list[Path]]:
    """:func:`mask_paths` of many images, listing each folder once (HF rows have none)."""
    folders: dict[Path, dict[str, list[Path]]] = {}
    index: dict[str, list[Path]] = {}
    for ref in images:
        if HF_SEP in ref:
            index[ref] = []
            continue
        p = Path(ref)
        if p.parent not in folders:
            folders[p.parent] = _masks_in(p.parent)
        index[ref] = folders[p.parent].get(p.stem, [])
    return index


def _open_mask(path: Path, load: bool = False) -> Image.Image:
    try:
        m = Image.open(path)
        if load:
            m.load()
        return m
    except OSError as e:
        raise ImageReadError(f"{path}: cannot read mask ({e})") from e


def _check_mask_size(path: Path, mask_size: tuple[int, int], size: tuple[int, int]) -> None:
    if tuple(mask_size) != tuple(size):
        raise BusClassifyError(
            f"{path}: mask is {mask_size[0]}x{mask_size[1]} px but its image is {size[0]}x{size[1]}"
        )


def check_mask_sizes(index: dict[str, list[Path]]) -> None:
    """Compare every mask in ``index`` (from :func:`mask_index`) with its image's size, from
    the file headers, so a bad mask stops a run before training starts."""
    for ref, paths in index.items():
        if not paths:
            continue
        try:
            with Image.open(ref) as im:
                size = im.size
        except OSError as e:
            raise ImageReadError(f"{ref}: not a readable image ({e})") from e
        for p in paths:
            with _open_mask(p) as m:
                _check_mask_size(p, m.size, size)


def read_mask(
    image: str | Path, size: tuple[int, int], paths: list[Path] | None = None
) -> Image.Image | None:
    """Union of the lesion masks of ``image`` (``paths``, found by :func:`mask_paths` when not
    given) as a binary ``L`` image, or ``None`` when it has none. A mask of another size than
    the image (``size`` = width, height) is an error."""
    paths = mask_paths(image) if paths is None else paths
    if not paths:
        return None
    union = None
    for p in paths:
        m = _open_mask(p, load=True)
        _check_mask_size(p, m.size, size)
        arr = np.asarray(m.convert("L")) > 127
        union = arr if union is None else union | arr
    return Image.fromarray((union * 255).astype(np.uint8), "L")


def detect_layout(root: Path) -> str:
    """Return ``hf``, ``split`` or ``busi`` for a data folder."""
    root = Path(root)
    if not root.is_dir():
        raise BusClassifyError(f"{root}: data folder does not exist")
    names = {p.name.lower() for p in root.iterdir()}
    if names & {"dataset_info.json", "state.json", "dataset_dict.json"} or any(
        p.suffix in (".parquet", ".arrow") for p in root.rglob("*") if p.is_file()
    ):
        return "hf"
    if any(n in SPLIT_ALIASES for n in names):
        return "split"
    return "busi"


def _folder_samples(root: Path, task: str, split: str | None, stats: dict) -> list[Sample]:
    out: list[Sample] = []
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise BusClassifyError(
            f"{root}: no class folders found (expected e.g. benign/ malignant/ normal/)"
        )
    for cdir in class_dirs:
        label = class_index(cdir.name, task, where=str(cdir))
        files, n_masks = _images_in(cdir, stats)
        stats["masks_excluded"] += n_masks
        if not files:
            raise BusClassifyError(f"{cdir}: class folder is empty (no images besides masks)")
        out += [Sample(str(p), label, cdir.name.lower(), split) for p in files]
    return out


def discover(root: str | Path, task: str = "binary") -> list[Sample]:
    """List every labelled sample under ``root`` (any supported layout)."""
    root = Path(root)
    layout = detect_layout(root)
    stats = {"masks_excluded": 0}
    if layout == "hf":
        samples = _hf_samples(root, task)
    elif layout == "split":
        samples = []
        for sdir in sorted(p for p in root.iterdir() if p.is_dir()):
            split = SPLIT_ALIASES.get(sdir.name.lower())
            if split is None:
                log.warning("%s: not a split folder name, ignored", sdir)
                continue
            samples += _folder_samples(sdir, task, split, stats)
    else:
        samples = _folder_samples(root, task, None, stats)
    log.info(
        "%s: %d images (%s layout), %d mask files excluded",
        root,
        len(samples),
        layout,
        stats["masks_excluded"],
    )
    if stats.get("orphan_masks"):
        log.warning(
            "%s: %d mask file(s) without an image skipped", root, len(stats["orphan_masks"])
        )
    return samples


# ---------------------------------------------------------------- Hugging Face exports
@functools.lru_cache(maxsize=4)
def _load_hf(root: str):
    import datasets

    path = Path(root)
    if (
        (path / "dataset_dict.json").exists()
        or (path / "dataset_info.json").exists()
        or (path / "state.json").exists()
    ):
        ds = datasets.load_from_disk(root)
    else:
        files = sorted(str(p) for p in path.rglob("*.parquet"))
        if not files:
            raise BusClassifyError(f"{root}: no parquet files or save_to_disk export found")
        split_files: dict[str, list[str]] = {}
        for f in files:
            name = Path(f).stem.split("-")[0].lower()
            split_files.setdefault(SPLIT_ALIASES.get(name, "train"), []).append(f)
        ds = datasets.load_dataset("parquet", data_files=split_files)
    if isinstance(ds, datasets.Dataset):
        ds = datasets.DatasetDict({"all": ds})
    return ds


def _column(ds, candidates: tuple[str, ...], root: Path, what: str) -> str:
    for c in candidates:
        if c in ds.column_names:
            return c
    raise BusClassifyError(
        f"{root}: Hugging Face export has no {what} column (looked for "
        f"{list(candidates)}; columns are {ds.column_names})"
    )


def _hf_samples(root: Path, task: str) -> list[Sample]:
    dsd = _load_hf(str(root))
    out: list[Sample] = []
    for split_name, ds in dsd.items():
        _column(ds, ("image", "img", "pixel_values"), root, "image")
        lcol = _column(ds, ("label", "labels", "class", "target"), root, "label")
        feature = ds.features[lcol]
        names = getattr(feature, "names", None)
        for i, value in enumerate(ds[lcol]):
            where = f"{root} [{split_name} row {i}]"
            if value is None:
                raise BusClassifyError(f"{where}: label is missing")
            cname = names[value] if names is not None else str(value)
            label = class_index(cname, task, where=where)
            out.append(
                Sample(
                    HF_SEP.join([str(root), split_name, str(i)]),
                    label,
                    cname.lower(),
                    SPLIT_ALIASES.get(split_name.lower()),
                )
            )
    return out


def read_sample(ref: str) -> Image.Image:
    """Open the image behind a sample reference as RGB (files or HF rows)."""
    if HF_SEP in ref:
        root, split, row = ref.rsplit(HF_SEP, 2)
        ds = _load_hf(root)[split]
        icol = _column(ds, ("image", "img", "pixel_values"), Path(root), "image")
        value = ds[int(row)][icol]
        if isinstance(value, dict):
            value = value.get("bytes") or value.get("path")
        if value is None:
            raise ImageReadError(f"{ref}: image is missing")
        return load_image(value, name=ref)
    return load_image(ref)
