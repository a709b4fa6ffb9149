"""The 2D-only A/B/label layout of LEVIR-CD, WHU-CD, DSIFN or S2Looking as open-cd, BIT and
ChangeFormer use it: ``A/`` (before), ``B/`` (after) and ``label/`` (change mask) images with the
same names, PNG/JPEG/TIFF, georeferenced or not.

Splits come from ``ROOT/SPLIT/{A,B,label}`` folders (open-cd), else from ``ROOT/list/SPLIT.txt``
name lists (BIT / ChangeFormer), else from a seeded 70/10/20 shuffle of all names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .io import DataError

FOLDERS = ("A", "B", "label")
SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
SEEDED_FRACTIONS = {"train": 0.7, "val": 0.1, "test": 0.2}


def is_pair_root(root: str | Path, split: str) -> bool:
    """True when ``root`` holds the A/B/label layout, with or without split folders."""
    root = Path(root)
    return all((root / split / f).is_dir() for f in FOLDERS) or all(
        (root / f).is_dir() for f in FOLDERS
    )


def _images(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in SUFFIXES}


def _names_of_split(root: Path, split: str, names: list[str], seed: int) -> list[str]:
    lst = root / "list" / f"{split}.txt"
    if lst.is_file():
        wanted = [Path(line.strip()).stem for line in lst.read_text().splitlines() if line.strip()]
        if not wanted:
            raise DataError(f"{lst}: split list is empty")
        return wanted
    if (root / "list").is_dir():
        raise DataError(
            f"{lst}: split list not found (list/ holds {sorted(p.name for p in (root / 'list').iterdir())})"
        )
    if split not in SEEDED_FRACTIONS:
        raise DataError(
            f"{root}: no split folders and no list/; a seeded split has only {sorted(SEEDED_FRACTIONS)}"
        )
    order = np.random.default_rng(seed).permutation(len(names))
    n_train = round(SEEDED_FRACTIONS["train"] * len(names))
    n_val = round(SEEDED_FRACTIONS["val"] * len(names))
    bounds = {
        "train": (0, n_train),
        "val": (n_train, n_train + n_val),
        "test": (n_train + n_val, len(names)),
    }
    lo, hi = bounds[split]
    return [names[i] for i in sorted(order[lo:hi])]


def list_pairs(
    root: str | Path, split: str, split_seed: int = 0
) -> tuple[list[tuple[str, Path, Path, Path]], list[str]]:
    """(name, A, B, label) of the split's complete pairs, and one problem line per incomplete name."""
    root = Path(root)
    base = root / split if all((root / split / f).is_dir() for f in FOLDERS) else root
    for f in FOLDERS:
        if not (base / f).is_dir():
            raise DataError(f"{base / f}: folder not found (A/B/label layout)")
    files = [_images(base / f) for f in FOLDERS]
    every = sorted(set().union(*files))
    if not every:
        raise DataError(f"{base / 'A'}: no PNG/JPEG/TIFF images")
    names = every if base != root else _names_of_split(root, split, every, split_seed)
    pairs, problems = [], []
    for n in names:
        missing = [f for f, fs in zip(FOLDERS, files) if n not in fs]
        if missing:
            problems.append(f"{n}: missing in {', '.join(missing)} (under {base})")
        else:
            pairs.append((n, *(fs[n] for fs in files)))
    return pairs, problems
