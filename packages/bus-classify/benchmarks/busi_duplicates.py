"""Near-duplicate groups on a real BUSI folder: counts per Hamming threshold, and a montage of
the grouped pairs to check by eye.

    python benchmarks/busi_duplicates.py --data ../../../shared/fixtures/busi_dev --montage docs/busi_duplicates.png

Prints one JSON object: for each threshold the number of groups, images in groups and groups
that mix classes; for the montage threshold the pairs shown (closest pair of each group).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--thresholds", type=int, nargs="+", default=[2, 4, 6, 8, 10])
    p.add_argument("--montage", help="PNG of grouped pairs at --show-distance")
    p.add_argument("--show-distance", type=int, default=6)
    p.add_argument("--max-pairs", type=int, default=48)
    p.add_argument(
        "--min-distance", type=int, default=0, help="montage: only pairs at least this far"
    )
    p.add_argument("--device", default="cpu", help="unused (hashing runs on the CPU)")
    p.add_argument("--quick", action="store_true", help="first 60 images only")
    args = p.parse_args(argv)

    from bus_classify.data.sources import discover, read_sample
    from bus_classify.data.split import duplicate_groups, phash

    samples = sorted(discover(args.data), key=lambda s: s.ref)
    if args.quick:
        samples = samples[:60]
    hashes = np.stack([phash(read_sample(s.ref)) for s in samples]).astype(np.uint8)
    dist = (hashes[:, None, :] != hashes[None, :, :]).sum(-1)
    res: dict = {
        "benchmark": "busi_duplicates",
        "package": "bus_classify",
        "images": len(samples),
        "thresholds": {},
    }
    for t in args.thresholds:
        g = duplicate_groups(hashes.astype(bool), t)
        ids, counts = np.unique(g, return_counts=True)
        multi = ids[counts > 1]
        mixed = sum(
            len({samples[i].source_class for i in np.nonzero(g == gid)[0]}) > 1 for gid in multi
        )
        res["thresholds"][t] = {
            "groups": int(len(multi)),
            "images_in_groups": int(counts[counts > 1].sum()),
            "groups_mixing_classes": int(mixed),
        }
    if args.montage:
        g = duplicate_groups(hashes.astype(bool), args.show_distance)
        pairs = []
        for gid in np.unique(g):
            m = np.nonzero(g == gid)[0]
            if len(m) < 2:
                continue
            sub = dist[np.ix_(m, m)] + np.eye(len(m), dtype=int) * 999
            a, b = np.unravel_index(np.argmin(sub), sub.shape)
            if sub[a, b] >= args.min_distance:
                pairs.append((int(sub[a, b]), int(m[a]), int(m[b])))
        pairs.sort(reverse=True)  # the least similar pairs first: those are the ones to check
        res["pairs_shown"] = [
            {"distance": d, "a": Path(samples[a].ref).name, "b": Path(samples[b].ref).name}
            for d, a, b in pairs[: args.max_pairs]
        ]
        _montage(samples, pairs[: args.max_pairs], Path(args.montage))
    print(json.dumps(res))
    return res


def _montage(samples, pairs, path: Path, tile: int = 96) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bus_classify.data.io import atomic_path
    from bus_classify.data.sources import read_sample

    cols = 4  # four pairs per row
    rows = max(1, -(-len(pairs) // cols))
    fig, axes = plt.subplots(rows, cols * 2, figsize=(cols * 2 * 1.3, rows * 1.45))
    axes = np.atleast_2d(axes)
    for ax in axes.flat:
        ax.axis("off")
    for k, (d, a, b) in enumerate(pairs):
        r, c = divmod(k, cols)
        for j, i in enumerate((a, b)):
            img = read_sample(samples[i].ref).convert("L")
            img.thumbnail((tile, tile))
            ax = axes[r, c * 2 + j]
            ax.imshow(np.asarray(img), cmap="gray")
            name = Path(samples[i].ref).stem.replace("benign", "B").replace("malignant", "M")
            ax.set_title(
                f"{name.replace('normal', 'N')}" + (f"  d={d}" if j == 0 else ""), fontsize=5
            )
    fig.tight_layout(pad=0.2)
    from PIL import Image

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80)
        Image.open(tmp).convert("L").save(tmp, optimize=True)  # grayscale keeps docs/ small
    plt.close(fig)


if __name__ == "__main__":
    main()
