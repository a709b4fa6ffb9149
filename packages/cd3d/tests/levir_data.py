"""Seeded generator of a tiny LEVIR-CD-style dataset (torchgeo's tests/data/*/data.py idea).

``make_levir(root, layout=...)`` writes ``A/``, ``B/`` and ``label/`` images where ``B`` is ``A`` with a
few bright rectangles ("new buildings") painted on, and ``label`` marks them (0/255 PNG). Layouts:
``splits`` (open-cd: ``ROOT/{train,val,test}/{A,B,label}``), ``lists`` (BIT / ChangeFormer:
``ROOT/{A,B,label}`` + ``ROOT/list/{train,val,test}.txt``) or ``flat`` (no split information).
Run it as a script to write one: ``python tests/levir_data.py OUT [--layout lists]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

SPLITS = {"train": 8, "val": 2, "test": 2}


def pair(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A, B, label): a textured background, the same with 1-3 rectangles added, and their mask."""
    base = rng.integers(40, 120, (size // 8, size // 8, 3)).astype(np.uint8)
    a = np.kron(base, np.ones((8, 8, 1), np.uint8)) + rng.integers(0, 20, (size, size, 3)).astype(
        np.uint8
    )
    b, label = a.copy(), np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        h, w = rng.integers(size // 8, size // 3, 2)
        y, x = rng.integers(0, size - h), rng.integers(0, size - w)
        b[y : y + h, x : x + w] = rng.integers(200, 256, 3)
        label[y : y + h, x : x + w] = 255
    return a, b, label


def make_levir(
    root: str | Path, layout: str = "splits", size: int = 64, seed: int = 0, fmt: str = "png"
) -> Path:
    """Write the dataset under ``root`` and return it."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    k = 0
    for split, n in SPLITS.items():
        base = root / split if layout == "splits" else root
        names = []
        for _ in range(n):
            name = f"{split}_{k}"
            k += 1
            for folder, img in zip(("A", "B", "label"), pair(rng, size)):
                (base / folder).mkdir(parents=True, exist_ok=True)
                ext = "png" if folder == "label" else fmt  # labels stay lossless
                Image.fromarray(img).save(base / folder / f"{name}.{ext}")
            names.append(f"{name}.png")
        if layout == "lists":
            (root / "list").mkdir(parents=True, exist_ok=True)
            (root / "list" / f"{split}.txt").write_text("\n".join(names) + "\n")
    return root


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--layout", choices=["splits", "lists", "flat"], default="splits")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    print(make_levir(a.out, a.layout, a.size, a.seed))
