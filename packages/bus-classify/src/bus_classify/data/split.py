"""Deterministic stratified 60/20/20 split that keeps near-duplicate groups together."""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.fft import dctn

from bus_classify.data.io import BusClassifyError, ImageReadError, write_csv
from bus_classify.data.sources import HF_SEP, Sample, read_sample

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


def phash(img: Image.Image, hash_size: int = 8) -> np.ndarray:
    """Perceptual hash: sign of the low-frequency DCT block of a 32x32 grayscale copy vs its median.

    Returns a boolean vector of ``hash_size**2`` bits. Near-identical images (resaved, slightly
    cropped or rescaled) differ in only a few bits.
    """
    size = hash_size * 4
    gray = np.asarray(img.convert("L").resize((size, size), Image.Resampling.LANCZOS), np.float64)
    low = dctn(gray, norm="ortho")[:hash_size, :hash_size].ravel()
    return low > np.median(low[1:])


def duplicate_groups(hashes: np.ndarray, max_distance: int = 10) -> np.ndarray:
    """Union images whose hashes differ in at most ``max_distance`` bits; return a group id each."""
    n = len(hashes)
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    h = hashes.astype(np.uint8)
    for i in range(n - 1):
        dist = (h[i + 1 :] != h[i]).sum(axis=1)
        for j in np.nonzero(dist <= max_distance)[0] + i + 1:
            a, b = find(i), find(int(j))
            if a != b:
                parent[max(a, b)] = min(a, b)
    roots = np.array([find(i) for i in range(n)])
    _, group = np.unique(roots, return_inverse=True)
    return group


@dataclass
class SplitReport:
    """What ``make_split`` did: counts per split and class, duplicate groups, skipped files."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    duplicate_groups: list[list[str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    leaks: list[list[str]] = field(default_factory=list)
    label_conflicts: list[list[str]] = field(default_factory=list)

    def summary(self, show_groups: int = 0) -> str:
        lines = [
            f"{s}: " + ", ".join(f"{k}={v}" for k, v in sorted(c.items()))
            for s, c in self.counts.items()
        ]
        n_dup = sum(len(g) for g in self.duplicate_groups)
        lines.append(
            f"near-duplicate groups: {len(self.duplicate_groups)} "
            f"({n_dup} images), each kept inside one split"
        )
        if self.label_conflicts:
            lines.append(
                f"LABEL CONFLICTS: {len(self.label_conflicts)} duplicate groups mix "
                "classes (check these labels):"
            )
            lines += [
                "  conflict: " + " | ".join(f"{Path(p).parent.name}/{Path(p).name}" for p in g)
                for g in self.label_conflicts
            ]
        if self.leaks:
            lines.append(f"WARNING: {len(self.leaks)} duplicate groups span the given splits")
        lines.append(f"skipped unreadable images: {len(self.skipped)}")
        lines += [
            "  duplicate group: " + " | ".join(Path(p).name for p in g)
            for g in self.duplicate_groups[:show_groups]
        ]
        return "\n".join(lines)


def _assign(groups: dict[int, list[int]], labels: list, fractions, seed: int) -> dict[int, str]:
    """Greedy stratified assignment of whole groups, largest deficit first, seeded order."""
    rng = np.random.default_rng(seed)
    out: dict[int, str] = {}
    by_class: dict[int, list[int]] = {}
    for gid, members in groups.items():
        lab = Counter(labels[m] for m in members).most_common(1)[0][0]
        by_class.setdefault(lab, []).append(gid)
    for lab in sorted(by_class):
        gids = sorted(by_class[lab])
        gids = [gids[k] for k in rng.permutation(len(gids))]
        gids.sort(key=lambda g: -len(groups[g]))  # stable: big groups first, seeded ties
        total = sum(len(groups[g]) for g in gids)
        have = dict.fromkeys(SPLITS, 0)
        for g in gids:
            deficit = {s: fractions[k] * total - have[s] for k, s in enumerate(SPLITS)}
            s = max(SPLITS, key=lambda s: (deficit[s], -SPLITS.index(s)))
            out[g] = s
            have[s] += len(groups[g])
    return out


def make_split(
    samples: list[Sample],
    fractions=(0.6, 0.2, 0.2),
    seed: int = 0,
    max_distance: int = 10,
    strict: bool = False,
) -> tuple[list[dict], SplitReport]:
    """Hash every image, group near-duplicates and split groups 60/20/20 per class.

    Samples that already carry a split (split-folder layout) keep it; duplicate groups that span
    splits are reported as leaks. Unreadable images are skipped and counted (``strict`` raises).
    """
    samples = sorted(samples, key=lambda s: s.ref)
    report = SplitReport()
    kept, hashes = [], []
    for s in samples:
        try:
            hashes.append(phash(read_sample(s.ref)))
            kept.append(s)
        except ImageReadError as e:
            if strict:
                raise
            log.warning("skipping %s", e)
            report.skipped.append(str(e))
    if not kept:
        raise BusClassifyError("no readable images to split")
    labels = {s.label for s in kept}
    if len(labels) < 2:
        where = Path(kept[0].ref.split("::")[0]).parent.parent
        raise BusClassifyError(
            f"{where}: all {len(kept)} images have one label "
            f"({kept[0].source_class}); a split needs at least two classes"
        )
    group = duplicate_groups(np.stack(hashes), max_distance)
    groups: dict[int, list[int]] = {}
    for i, g in enumerate(group):
        groups.setdefault(int(g), []).append(i)
    given = all(s.split for s in kept)
    if given:
        split_of = [s.split for s in kept]
    else:
        assign = _assign(groups, [s.source_class for s in kept], fractions, seed)
        split_of = [assign[int(g)] for g in group]
    rows = []
    for i, s in enumerate(kept):
        rows.append(
            {
                "path": s.ref,
                "label": s.label,
                "source_class": s.source_class,
                "split": split_of[i],
                "dup_group": int(group[i]),
                "group_size": len(groups[int(group[i])]),
            }
        )
    for members in groups.values():
        if len(members) > 1:
            refs = [kept[m].ref for m in members]
            report.duplicate_groups.append(refs)
            if len({split_of[m] for m in members}) > 1:
                report.leaks.append(refs)
            if len({kept[m].source_class for m in members}) > 1:
                report.label_conflicts.append(refs)
    for s in SPLITS:
        report.counts[s] = dict(Counter(r["source_class"] for r in rows if r["split"] == s))
    return rows, report


def split_folder(
    data: str | Path,
    out: str | Path,
    task: str = "binary",
    seed: int = 0,
    max_distance: int = 10,
    strict: bool = False,
) -> tuple[list[dict], SplitReport]:
    """Discover ``data``, split it with :func:`make_split` and write the split CSV to ``out``."""
    from bus_classify.data.sources import discover

    rows, report = make_split(
        discover(data, task), seed=seed, max_distance=max_distance, strict=strict
    )
    write_csv(out, rows)
    return rows, report


def read_csv(path: str | Path) -> list[dict]:
    """Read a split CSV written by ``bus-classify split``."""
    path = Path(path)
    if not path.exists():
        raise BusClassifyError(f"{path}: split CSV not found (run `bus-classify split` first)")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    need = {"path", "label", "split"}
    if not rows or not need <= set(rows[0]):
        raise BusClassifyError(f"{path}: not a split CSV (needs columns {sorted(need)})")
    for r in rows:
        r["label"] = int(r["label"])
    return rows


def check_paths(rows: list[dict], where: str | Path) -> None:
    """Every image path of ``rows`` must exist (the data may have moved since ``split``)."""
    gone = [r["path"] for r in rows if HF_SEP not in r["path"] and not Path(r["path"]).is_file()]
    if gone:
        raise BusClassifyError(
            f"{where}: {len(gone)} of {len(rows)} image paths do not exist "
            f"(first: {gone[0]}); did the data move? re-run `bus-classify split`"
        )


def relabel(rows: list[dict], task: str, where: str = "") -> list[dict]:
    """Set each row's ``label`` from its ``source_class`` for ``task`` (binary or 3class), so one
    split CSV serves both tasks; rows without ``source_class`` keep their label."""
    from bus_classify.data.sources import class_index

    for r in rows:
        if r.get("source_class"):
            r["label"] = class_index(r["source_class"], task, where=f"{where} {r['path']}")
    return rows
